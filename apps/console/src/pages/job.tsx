import type { PageProps } from '../app.js';
import { Page } from '../components/page.js';

export function JobPage(_: PageProps) {
  return <Page title="Job" />;
}
