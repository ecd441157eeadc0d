// The OpenID Connect provider the tests sign in with: oidc-provider (a certified implementation)
// on 127.0.0.1, with its accounts, clients, audience and signing keys read from a JSON file.
//
//   node tests/idp/provider.mjs CONFIG.json        (or IDP_CONFIG=CONFIG.json node ...)
//
// The file holds (tests/helpers/idp.py writes it):
//   port              the port to listen on; the issuer is http://127.0.0.1:<port>
//   keys              the private JWK set that signs; the first key of an algorithm signs, the
//                     others are published in the JWKS (a key being retired, or one to come)
//   audience          the `aud` of the access tokens (the API they are for)
//   other_audiences   further APIs a client may ask a token for with `resource`
//   access_token_alg  RS256 unless set (ES256 needs an EC P-256 key in `keys`)
//   access_token_ttl  the access tokens' lifetime in seconds
//   accounts          account id -> the person's claims (`sub` is the account id)
//   clients           client id -> {redirect_uris: [...]} for a public client that signs people in
//                     (authorization code with PKCE S256), or {client_secret, claims} for a
//                     machine (client credentials); either may set its own access_token_ttl
//
// Everything but the port and the keys is read again when it changes, so a test can add an
// account or a client while the provider runs. Access tokens are JWTs (RFC 9068, `typ: at+jwt`)
// carrying the account's claims (or the machine client's) beside sub, client_id, iss, aud, exp.
// Nothing here prints a token, a code or a secret.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

import Provider, { errors } from 'oidc-provider';
// The provider's own in-memory storage, for everything but the clients (which come from the file).
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const configPath = process.argv[2] ?? process.env.IDP_CONFIG;
if (!configPath) {
  console.error('usage: node provider.mjs CONFIG.json (or set IDP_CONFIG)');
  process.exit(2);
}

let cached = { ino: -1, mtimeMs: -1, size: -1, config: undefined };

function current() {
  const stat = fs.statSync(configPath);
  if (stat.ino !== cached.ino || stat.mtimeMs !== cached.mtimeMs || stat.size !== cached.size) {
    const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
    cached = { ino: stat.ino, mtimeMs: stat.mtimeMs, size: stat.size, config };
  }
  return cached.config;
}

const initial = current();
const port = Number(initial.port);
const issuer = `http://127.0.0.1:${port}`;

// A resource indicator must be an absolute URI (RFC 8707); an audience such as `antring-api` is
// not one, so it is asked for as `urn:audience:antring-api`. tests/helpers/idp.py does the same.
function indicatorFor(audience) {
  return URL.parse(audience) ? audience : `urn:audience:${encodeURIComponent(audience)}`;
}

function audienceFor(indicator) {
  const config = current();
  const audiences = [config.audience, ...(config.other_audiences ?? [])];
  return audiences.find((audience) => indicatorFor(audience) === indicator);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`;
}

function clientMetadata(clientId, entry) {
  if (entry.redirect_uris) {
    return {
      client_id: clientId,
      client_name: entry.name ?? clientId,
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: entry.redirect_uris,
    };
  }
  return {
    client_id: clientId,
    client_secret: entry.client_secret,
    client_name: entry.name ?? clientId,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  };
}

class Adapter extends MemoryAdapter {
  async find(id) {
    if (this.model !== 'Client') {
      return super.find(id);
    }
    const entry = current().clients?.[id];
    return entry ? clientMetadata(id, entry) : undefined;
  }
}

// Claims the provider sets itself; an account or a client cannot override them.
const RESERVED = new Set(['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'cnf']);

function withoutReserved(claims) {
  return Object.fromEntries(Object.entries(claims ?? {}).filter(([name]) => !RESERVED.has(name)));
}

const provider = new Provider(issuer, {
  adapter: Adapter,
  jwks: initial.keys,
  cookies: {
    keys: [crypto.randomBytes(32).toString('base64url')],
    // The API under test is on the same host (another port): cookies do not tell ports apart.
    names: {
      session: `_idp${port}_session`,
      interaction: `_idp${port}_interaction`,
      resume: `_idp${port}_resume`,
    },
  },
  async findAccount(ctx, sub) {
    const claims = current().accounts?.[sub];
    if (!claims) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { ...claims, sub };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email'],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async defaultResource() {
        return indicatorFor(current().audience);
      },
      async useGrantedResource() {
        return true;
      },
      async getResourceServerInfo(ctx, indicator, client) {
        const audience = audienceFor(indicator);
        if (audience === undefined) {
          throw new errors.InvalidTarget(`no API is known by the resource indicator ${indicator}`);
        }
        const config = current();
        const entry = config.clients?.[client.clientId] ?? {};
        return {
          scope: '',
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: entry.access_token_ttl ?? config.access_token_ttl ?? 300,
          jwt: { sign: { alg: config.access_token_alg ?? 'RS256' } },
        };
      },
    },
  },
  ttl: {
    AccessToken(ctx, token) {
      return token.resourceServer?.accessTokenTTL ?? current().access_token_ttl ?? 300;
    },
    ClientCredentials(ctx, token) {
      return token.resourceServer?.accessTokenTTL ?? current().access_token_ttl ?? 300;
    },
    AuthorizationCode: 60,
    IdToken: 300,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  pkce: {
    // Every authorization request must carry an S256 code challenge.
    required() {
      return true;
    },
  },
  async extraTokenClaims(ctx, token) {
    const config = current();
    if (token.accountId) {
      return withoutReserved(config.accounts?.[token.accountId]);
    }
    return withoutReserved(config.clients?.[token.clientId]?.claims);
  },
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  ...(initial.keys.keys.some((key) => key.kty === 'RSA')
    ? {}
    : { clientDefaults: { id_token_signed_response_alg: 'ES256' } }),
});

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, clientName, message) {
  return page('Sign in', `
<p>to ${escapeHtml(clientName)}</p>
${message ? `<p role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="login">Account</label>
  <input id="login" name="login" autocomplete="username" autofocus required>
  <button type="submit">Sign in</button>
</form>
<p><a href="/interaction/${escapeHtml(uid)}/abort">Cancel</a></p>`);
}

function consentPage(uid, clientName, accountId) {
  return page('Allow access', `
<p>${escapeHtml(clientName)} asks to act as ${escapeHtml(accountId)}.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<p><a href="/interaction/${escapeHtml(uid)}/abort">Cancel</a></p>`);
}

// The sign-in and consent pages: a person types an account id, then allows the client.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (!match) return next();
  const [, , action] = match;
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    if (err instanceof errors.SessionNotFound) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = page('Sign-in expired', '<p>Start again from the application.</p>');
      return undefined;
    }
    throw err;
  }
  const { uid, prompt, params, session } = details;
  const client = await provider.Client.find(params.client_id);
  const clientName = client?.clientName ?? params.client_id;

  if (action === undefined && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = prompt.name === 'login'
      ? loginPage(uid, clientName)
      : consentPage(uid, clientName, session?.accountId);
    return undefined;
  }

  if (action === 'abort' && ctx.method === 'GET') {
    return provider.interactionFinished(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'the person cancelled the sign-in',
    }, { mergeWithLastSubmission: false });
  }

  if (action === 'login' && ctx.method === 'POST' && prompt.name === 'login') {
    const form = await readForm(ctx.req);
    const accountId = (form.get('login') ?? '').trim();
    if (!current().accounts?.[accountId]) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, clientName, `No account is named "${accountId}".`);
      return undefined;
    }
    return provider.interactionFinished(ctx.req, ctx.res, {
      login: { accountId },
    }, { mergeWithLastSubmission: false });
  }

  if (action === 'confirm' && ctx.method === 'POST' && prompt.name === 'consent') {
    await readForm(ctx.req);
    const { details: missing } = prompt;
    let { grantId } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    grantId = await grant.save();
    return provider.interactionFinished(ctx.req, ctx.res, {
      consent: details.grantId ? {} : { grantId },
    }, { mergeWithLastSubmission: true });
  }

  ctx.status = 405;
  ctx.type = 'html';
  ctx.body = page('Not here', `<p>${escapeHtml(ctx.method)} is not used on this step of the sign-in.</p>`);
  return undefined;
});

// What went wrong, with no token, code or secret: the provider's errors name the request's
// problem only.
provider.on('server_error', (ctx, err) => {
  console.error(`server_error on ${ctx.method} ${ctx.path}: ${err.stack}`);
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
