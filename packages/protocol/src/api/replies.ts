/**
 * Schemas of the records the API answers with. The TypeScript types of these records are
 * derived from them (Static), so the server, the client and the OpenAPI document share
 * one declaration.
 */
import { Type } from '@sinclair/typebox';

// Placeholders being replaced by the full schemas in this change series.
export const RunView = Type.Unknown({ title: 'RunView' });
export const BeginSessionResponse = Type.Unknown({ title: 'BeginSessionResponse' });
export const BatchResponse = Type.Unknown({ title: 'BatchResponse' });
export const CommitResponse = Type.Unknown({ title: 'CommitResponse' });
export const AgentView = Type.Unknown({ title: 'AgentView' });
export const PolicyView = Type.Unknown({ title: 'PolicyView' });
export const JobSummary = Type.Unknown({ title: 'JobSummary' });
export const HistoryEntry = Type.Unknown({ title: 'HistoryEntry' });
export const StoreReport = Type.Unknown({ title: 'StoreReport' });
export const CapacityReport = Type.Unknown({ title: 'CapacityReport' });
export const GcReport = Type.Unknown({ title: 'GcReport' });
export const VerifyReport = Type.Unknown({ title: 'VerifyReport' });
export const PruneResult = Type.Unknown({ title: 'PruneResult' });
export const SessionRecord = Type.Unknown({ title: 'SessionRecord' });
export const SnapshotRecord = Type.Unknown({ title: 'SnapshotRecord' });
export const RunLeaseAnswer = Type.Unknown({ title: 'RunLeaseAnswer' });
export const RunProgressAnswer = Type.Unknown({ title: 'RunProgressAnswer' });
