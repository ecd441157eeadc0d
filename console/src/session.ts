// What the screens share about the signed-in person: their role (what they are offered) and
// how the table keeps up with the service.
import { createContext, useContext } from "react";
import type { Role } from "./api";
import type { LiveMode } from "./live";

export interface Session {
  role: Role;
  live: LiveMode;
}

export const SessionContext = createContext<Session>({ role: "viewer", live: "connecting" });

export function useSession(): Session {
  return useContext(SessionContext);
}

export function canEdit(role: Role): boolean {
  return role === "admin" || role === "operator";
}
