import type { PageProps } from '../app.js';
import { Page } from '../components/page.js';
import { Link } from '../router.js';

export function NotFoundPage(_: PageProps) {
  return (
    <Page title="No such page">
      <p>
        This page does not exist, or your role may not open it. <Link href="/">Back to the dashboard</Link>.
      </p>
    </Page>
  );
}
