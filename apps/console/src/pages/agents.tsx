import type { PageProps } from '../app.js';
import { Page } from '../components/page.js';

export function AgentsPage(_: PageProps) {
  return <Page title="Agents" />;
}
