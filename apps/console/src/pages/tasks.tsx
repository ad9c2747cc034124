import type { PageProps } from '../app.js';
import { Page } from '../components/page.js';

export function TasksPage(_: PageProps) {
  return <Page title="Tasks" />;
}
