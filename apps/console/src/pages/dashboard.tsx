import type { PageProps } from '../app.js';
import { Page } from '../components/page.js';

export function DashboardPage(_: PageProps) {
  return <Page title="Dashboard" />;
}
