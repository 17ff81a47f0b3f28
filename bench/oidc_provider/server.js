// oidc-provider as bin/bench's peer baseline: client_credentials with client_secret_basic,
// issuing JWT access tokens for one resource server, signed with BENCH_ALG.
//
// Environment: BENCH_PORT (listens on 127.0.0.1), BENCH_ALG (RS256 or ES256),
// BENCH_PROCESSES (1: this process serves; more: a cluster primary forks that many workers),
// BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SCOPE, BENCH_RESOURCE (the audience).
// Prints "READY" on stdout once every serving process listens.
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

const env = process.env;

// One RSA-2048 and one P-256 key, made once so that every worker signs with the same keys
// and the token's kid is found in the JWKS whichever worker serves it.
function generateJwks() {
  const jwk = (type, options) => generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...jwk('rsa', { modulusLength: 2048 }), kid: 'bench-rsa', alg: 'RS256', use: 'sig' },
      { ...jwk('ec', { namedCurve: 'P-256' }), kid: 'bench-ec', alg: 'ES256', use: 'sig' },
    ],
  };
}

async function createProvider(jwks) {
  // Imported here, not at the top: a cluster primary only forks and never loads the provider.
  const { default: Provider } = await import('oidc-provider');
  // The development memory adapter, passed explicitly so that the provider does not warn
  // about it. JWT access tokens are never stored (only opaque ones are), and the adapter
  // is a bounded LRU anyway, so a long run does not grow it.
  const { createMemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
  const scope = env.BENCH_SCOPE;
  const resourceServer = {
    scope,
    audience: env.BENCH_RESOURCE,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 3600,
    jwt: { sign: { alg: env.BENCH_ALG } },
  };
  return new Provider(`http://127.0.0.1:${env.BENCH_PORT}`, {
    adapter: createMemoryAdapter(),
    jwks,
    scopes: [scope],
    clients: [{
      client_id: env.BENCH_CLIENT_ID,
      client_secret: env.BENCH_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope,
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // A request without a resource parameter gets the one resource server.
        defaultResource: () => env.BENCH_RESOURCE,
        getResourceServerInfo: () => resourceServer,
      },
    },
    ttl: { ClientCredentials: 3600 },
  });
}

async function serve(jwks, onListening) {
  const provider = await createProvider(jwks);
  createServer(provider.callback()).listen(Number(env.BENCH_PORT), '127.0.0.1', onListening);
}

function forkWorkers(count, jwks) {
  let listening = 0;
  cluster.on('listening', () => {
    listening += 1;
    if (listening === count) console.log('READY');
  });
  // A worker that dies would silently halve the capacity: stop the whole run instead.
  cluster.on('exit', (worker, code) => {
    console.error(`oidc-provider worker ${worker.process.pid} exited (${code})`);
    process.exit(1);
  });
  for (let i = 0; i < count; i += 1) {
    cluster.fork({ BENCH_JWKS: JSON.stringify(jwks) });
  }
}

const processes = Number(env.BENCH_PROCESSES ?? 1);
if (cluster.isWorker) {
  await serve(JSON.parse(env.BENCH_JWKS));
} else if (processes > 1) {
  // Workers are killed with the primary: SIGTERM ends the primary's default way, and
  // cluster workers exit when their IPC channel to the primary closes.
  forkWorkers(processes, generateJwks());
} else {
  await serve(generateJwks(), () => console.log('READY'));
}
