// Where the API and the identity provider are, read at start from config.json beside
// index.html (the image's nginx answers it from its environment, the tests serve their own;
// in Vite's dev server a console/public/config.json may, else VITE_API_URL says where the API
// is), so one build serves every deployment. Without an identity provider the console
// offers only the development sign-in with an API key.
export interface OidcConfig {
  authority: string;
  clientId: string;
  scope?: string;
}

export interface ConsoleConfig {
  apiUrl: string;
  oidc: OidcConfig | null;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const fallback: ConsoleConfig = {
    apiUrl: import.meta.env.VITE_API_URL ?? "http://127.0.0.1:8000",
    oidc: null,
  };
  const response = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" });
  // Vite's dev server answers index.html for a file it does not have.
  if (!response.ok || !response.headers.get("content-type")?.includes("json")) return fallback;
  const loaded = (await response.json()) as Partial<ConsoleConfig>;
  return {
    apiUrl: (loaded.apiUrl || fallback.apiUrl).replace(/\/$/, ""),
    // The image writes an empty issuer when there is no identity provider.
    oidc: loaded.oidc?.authority ? loaded.oidc : null,
  };
}
