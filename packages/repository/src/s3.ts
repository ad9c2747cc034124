/**
 * The S3 object store, apart from the package's main entry because the AWS SDK takes
 * about half a second to load: `import { S3ObjectStore } from '@hoard/repository/s3'`.
 */
export { S3ObjectStore, type S3ObjectStoreOptions } from './store/s3-store.js';
