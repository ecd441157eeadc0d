// Who is signed in. People sign in through the identity provider (authorization code with
// PKCE, oidc-client-ts), the token renewed silently in a hidden frame before it expires; it is
// kept in this tab's sessionStorage, which no other origin's script can read, never in
// localStorage. Without a provider (`make run`) the development sign-in takes an API key,
// also kept in sessionStorage only.
import { UserManager, WebStorageStateStore } from "oidc-client-ts";
import { useSyncExternalStore } from "react";
import type { ConsoleConfig } from "./config";

export type AuthState =
  | { status: "loading" }
  | { status: "signed-out"; expired?: boolean }
  | { status: "signed-in"; kind: "oidc" | "key"; name: string; token: string };

const DEV_KEY = "antring.devKey";

class Auth {
  private state: AuthState = { status: "loading" };
  private listeners = new Set<() => void>();
  private manager: UserManager | null = null;

  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot = () => this.state;

  get usesProvider() {
    return this.manager !== null;
  }

  token(): string | null {
    return this.state.status === "signed-in" ? this.state.token : null;
  }

  private set(state: AuthState) {
    this.state = state;
    for (const listener of this.listeners) listener();
  }

  async start(config: ConsoleConfig) {
    if (config.oidc) {
      const origin = window.location.origin;
      const storage = new WebStorageStateStore({ store: window.sessionStorage });
      this.manager = new UserManager({
        authority: config.oidc.authority,
        client_id: config.oidc.clientId,
        redirect_uri: `${origin}/signed-in`,
        silent_redirect_uri: `${origin}/silent-renew.html`,
        post_logout_redirect_uri: `${origin}/`,
        response_type: "code",
        scope: config.oidc.scope ?? "openid profile email",
        automaticSilentRenew: true,
        userStore: storage,
        stateStore: storage,
      });
      const manager = this.manager;
      manager.events.addUserLoaded((user) => {
        this.set({
          status: "signed-in",
          kind: "oidc",
          name: user.profile.name ?? user.profile.sub,
          token: user.access_token,
        });
      });
      manager.events.addAccessTokenExpired(() => {
        void manager.removeUser();
        this.set({ status: "signed-out", expired: true });
      });
      if (window.location.pathname === "/signed-in") return; // the callback route finishes it
      const user = await manager.getUser();
      if (user && !user.expired) {
        this.set({
          status: "signed-in",
          kind: "oidc",
          name: user.profile.name ?? user.profile.sub,
          token: user.access_token,
        });
      } else {
        this.set({ status: "signed-out" });
      }
      return;
    }
    const key = window.sessionStorage.getItem(DEV_KEY);
    this.set(key ? this.keySession(key) : { status: "signed-out" });
  }

  private keySession(key: string): AuthState {
    return { status: "signed-in", kind: "key", name: `${key.slice(0, 8)}…`, token: key };
  }

  async signIn() {
    const returnTo = window.location.pathname + window.location.search;
    await this.manager?.signinRedirect({ state: { returnTo } });
  }

  /** Finishes the provider's redirect back; answers where the person was going. */
  async completeSignIn(): Promise<string> {
    if (!this.manager) return "/";
    const user = await this.manager.signinRedirectCallback();
    const state = user.state as { returnTo?: string } | undefined;
    return state?.returnTo && state.returnTo !== "/signed-in" ? state.returnTo : "/";
  }

  signInWithKey(key: string) {
    window.sessionStorage.setItem(DEV_KEY, key);
    this.set(this.keySession(key));
  }

  async signOut() {
    window.sessionStorage.removeItem(DEV_KEY);
    await this.manager?.removeUser();
    this.set({ status: "signed-out" });
  }

  failSignIn() {
    this.set({ status: "signed-out" });
  }
}

export const auth = new Auth();

export function useAuth(): AuthState {
  return useSyncExternalStore(auth.subscribe, auth.snapshot);
}
