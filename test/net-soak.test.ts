/**
 * Soak and abuse, short form (the long one: `npm run soak -- --minutes N`): a server with the
 * default limits serves a well-behaved primary and backup checkpointing through it, alone for
 * 5 s, then for 20 s while ten kinds of malicious clients of five users attack it (see
 * scripts/soak/attackers.js). Loopback only. Bounded: ~30 s.
 *
 * Stated bounds: server peak RSS (VmHWM) under 384 MiB; the well-behaved primary's p99 under
 * attack within 40x its idle p99 (idle taken as at least 2 ms: the machine is small and shared);
 * every acknowledged write reads back; nothing outside a region changes; no attack gets through.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runSoak, print } = require('../scripts/soak/run.js');

const RSS_BOUND = 384 * 2 ** 20;
const P99_FACTOR = 40;

test('many hostile clients cannot hurt the well-behaved ones, nor grow the server without bound', async () => {
  const result = await runSoak({ seconds: 20, idleSeconds: 5 });
  print(result);
  expect(result.problems).toEqual([]);
  expect(result.rss.peak).toBeLessThan(RSS_BOUND);
  expect(result.attacked.p99).toBeLessThan(P99_FACTOR * Math.max(result.idle.p99, 2));
  // The attacks were real: each limit they aim at was hit, and each refusal came with its code.
  expect(result.limitHits).toMatchObject({
    maxPendingHandshakes: expect.any(Number),
    maxConnectionsPerUser: expect.any(Number),
    maxSubscriptionsPerConnection: expect.any(Number),
  });
  expect(result.refusals).toMatchObject({ EAUTH: expect.any(Number), EKEY: expect.any(Number), EBOUNDS: expect.any(Number), EPROTO: expect.any(Number), ETOOMANY: expect.any(Number), EBUSY: expect.any(Number) });
  expect(result.attacked.writes).toBeGreaterThan(100);
  // A relay's injected WRITE closed the sealed session every round; the TLS flood ran (openssl present).
  expect(result.attacks['relay.closed']).toBeGreaterThan(0);
  expect(result.attacks['relay.closed']).toBe(result.attacks.relay);
  if (process.env.CI === 'true') expect(result.attackNames).toContain('tls-flood');
}, 90_000);
