/** Who is signed in: the app provides it, pages read it to offer only what the role may do. */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ConsoleSession } from '@hoard/protocol/api';
import { may as mayCallRoute, type Role } from './api.js';
import type { RouteId } from '@hoard/protocol/api';

export type Session = ConsoleSession;

export interface SessionState {
  session: Session;
  /** Forget the session here (after sign-out, or when the server says it is gone). */
  signedOut(): void;
}

export const SessionContext = createContext<SessionState | undefined>(undefined);

/** The signed-in session; pages are only rendered with one. */
export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error('useSession outside a signed-in page');
  return state;
}

/** Whether the signed-in role may call route `id` (what a role may not do is not offered). */
export function useMay(): (id: RouteId) => boolean {
  const { session } = useSession();
  return (id) => mayCallRoute(session.role as Role, id);
}
