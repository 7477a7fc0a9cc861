// Cluster mode in real Chromium: a viewer whose browser reaches another
// node than the session's owner (a gateway) gets its video from that
// node. Node A runs `syncreel demo` and owns the demo session; node B
// runs `syncreel serve` on the same NATS, PostgreSQL and media root. The
// host's page is on A, the viewer's on B: B relays the viewer's session
// traffic to A over NATS, A publishes each encoded picture once on NATS,
// and B packetizes it for its own peer (docs/cluster.md, "Built:
// gateways" and "Built: media relay"). The pictures are checked as in
// video.test.mjs: the frame code burnt into the pixels and the frame the
// RTP timestamp names. Then the proof that they came from B: the relay's
// counters on both nodes, and the UDP port the viewer's browser talks
// to, which must be one of B's sockets, not A's.
//
// Needs nats-server and PostgreSQL's server binaries (scripts/setup.sh);
// everything listens on loopback.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, test } from 'node:test';

import {
  DEMO_STREAM_ENV, assertNoPageErrors, joinAs, launchBrowser, metrics, seekTo, startClusterBackends,
  startDemoServer, startServer, until,
} from './support/harness.mjs';

// Two nodes, NATS, PostgreSQL and two pages share a two-core machine;
// the relayed stream also waits for the gateway's hub to subscribe.
const VIDEO_WAIT_MS = 30_000;

let backends;
let owner;
let gateway;
let browser;
const pages = [];

before(async () => {
  backends = await startClusterBackends();
  const cluster = ['--cluster', backends.nats, '--store', backends.store];
  // Sessions stay on the node that made them: the demo's is A's.
  const common = { SYNCREEL_CLUSTER__PLACE_SESSIONS: 'false' };
  owner = await startDemoServer({ args: cluster, env: { ...common, SYNCREEL_CLUSTER__NODE_ID: 'node-a' } });
  gateway = await startServer({
    args: cluster,
    env: {
      ...common, ...DEMO_STREAM_ENV, SYNCREEL_CLUSTER__NODE_ID: 'node-b', SYNCREEL_MEDIA__ROOT: owner.mediaRoot,
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  // Whatever failed before, NATS and PostgreSQL are stopped, last, once
  // no node is left to complain of losing them.
  try {
    await browser?.close();
  } finally {
    try {
      await gateway?.stop();
      await owner?.stop();
    } finally {
      await backends?.stop();
    }
  }
});

// Keeps every RTCPeerConnection the page makes, so that the test can ask
// the live one which candidate it talks to (the page itself does not say).
function keepPeerConnections() {
  window.peerConnections = [];
  const Real = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Real {
    constructor(...args) {
      super(...args);
      window.peerConnections.push(this);
    }
  };
}

async function joinWatching(url, name) {
  const page = await joinAs(browser, url, name, { init: keepPeerConnections });
  pages.push(page);
  // The console says only that a resource failed; this says which.
  page.refused = [];
  page.on('response', (res) => {
    if (res.status() >= 400) page.refused.push(`${res.status()} ${new URL(res.url()).pathname}`);
  });
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  return page;
}

/** Polls `fn(arg)` in the page (it may be async) until it returns `{ok: true, …}`; returns it. */
async function eventually(page, what, fn, arg, timeout = VIDEO_WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last?.ok) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await page.waitForTimeout(25);
  }
}

/** Waits until the video shows `frame`, by the code in its pixels and by its RTP timestamp. */
function videoShows(page, frame) {
  return eventually(page, `video frame ${frame}`, async (want) => {
    const code = await window.syncreel.readVideoFrameCode({ via: 'canvas' });
    const shown = window.syncreel.video().shown;
    return { ok: code === want && shown?.frame === want, code, rtpFrame: shown?.frame };
  }, frame);
}

/**
 * The remote ICE candidates of the page's connected peer: the one its
 * selected pair uses (`chosen`) and every one it was given (`given`).
 */
function remoteCandidates(page) {
  return page.evaluate(async () => {
    const pc = window.peerConnections.findLast((p) => p.connectionState === 'connected');
    if (!pc) return null;
    const stats = [...(await pc.getStats()).values()];
    const byId = new Map(stats.map((s) => [s.id, s]));
    const pair = byId.get(stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId)?.selectedCandidatePairId);
    const describe = (c) => c && { address: c.address, port: c.port, protocol: c.protocol, type: c.candidateType };
    return {
      chosen: describe(byId.get(pair?.remoteCandidateId)),
      given: stats.filter((s) => s.type === 'remote-candidate').map(describe),
    };
  });
}

/** The local ports of the UDP sockets process `pid` holds (Linux: its fds, matched in /proc/<pid>/net/udp{,6} by inode). */
function udpPortsOf(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch {
      // Closed since the directory was read.
    }
  }
  const ports = new Set();
  for (const table of ['udp', 'udp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode …
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9])) ports.add(Number.parseInt(cols[1].split(':')[1], 16));
    }
  }
  return ports;
}

test('a viewer on a gateway node sees the owner\'s exact frames, seeking and playing, from its own node', async (t) => {
  const t0 = Date.now();
  const lap = (what) => t.diagnostic(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const viewerUrl = owner.links.viewer.replace(owner.base, gateway.base);
  assert.notEqual(viewerUrl, owner.links.viewer, 'the viewer link names node A\'s origin');
  const host = await joinWatching(owner.links.host, 'Host on A');
  const viewer = await joinWatching(viewerUrl, 'Viewer on B');
  lap('both pages have video');
  // The viewer's session is A's: B relays its connection rather than
  // running the session itself.
  assert.ok((await metrics(gateway.base)).get('syncreel_relayed_connections_total') >= 1, 'B relays the viewer to A');
  assert.deepEqual((await viewer.evaluate(() => window.syncreel.state())).participants.map((p) => p.name).sort(),
    ['Host on A', 'Viewer on B'], 'one room across both nodes');

  for (const [timecode, frame] of [['01:00:10:05', 245], ['01:00:20:00', 480]]) {
    await seekTo(host, timecode, frame, [viewer]);
    for (const [who, page] of [['host', host], ['viewer', viewer]]) {
      const seen = await videoShows(page, frame);
      t.diagnostic(`${timecode} on the ${who}'s page: code ${seen.code}, rtp ${seen.rtpFrame}`);
    }
  }
  lap('seeks shown');

  // Play: the viewer's pictures advance, each the frame its RTP
  // timestamp names. Two seconds of them after a second of warm-up.
  const from = 480 + 24;
  const PICTURES = 48;
  await host.keyboard.press('Space');
  let log;
  try {
    const started = await until(host, () => {
      const s = window.syncreel.state();
      return s.transport.playing && s.pending === 0 && s.transport.anchorTime;
    });
    await eventually(viewer, `${PICTURES} playing pictures with codes read`, ([first, want]) => {
      const read = window.syncreel.videoLog.filter((r) => r[1] >= first && r[2] != null);
      return { ok: read.length >= want, read: read.length, frame: window.syncreel.video().shown?.frame };
    }, [from, PICTURES]);
    log = (await viewer.evaluate(() => window.syncreel.videoLog)).filter((r) => r[4] >= started && r[1] >= from);
  } finally {
    await host.keyboard.press('Space');
  }
  lap('played');
  const read = log.filter((r) => r[2] != null);
  const codes = read.map((r) => r[2]);
  const fps = (log.length - 1) / ((log[log.length - 1][0] - log[0][0]) / 1e6);
  t.diagnostic(`viewer played ${log.length} pictures (${fps.toFixed(1)}/s), frames ${log[0][1]}–${log[log.length - 1][1]}; `
    + `${read.length} codes read, ${codes[0]}–${codes[codes.length - 1]}`);
  assert.ok(codes[codes.length - 1] - codes[0] >= PICTURES - 1, `the picture did not advance: codes ${codes[0]}–${codes[codes.length - 1]}`);
  const backwards = read.filter((r, i) => i > 0 && r[2] < read[i - 1][2]);
  assert.deepEqual(backwards.slice(0, 5), [], 'pictures whose frame code is below the one before');
  const mismatched = read.filter((r) => r[2] !== r[1]);
  assert.deepEqual(mismatched.slice(0, 5), [], 'pictures whose frame code is not the frame their RTP timestamp names');
  const [v, hv] = await Promise.all([viewer, host].map((p) => p.evaluate(() => window.syncreel.video())));
  t.diagnostic(`latency median: viewer on B ${(v.latencyMedianUs / 1000).toFixed(1)} ms, host on A `
    + `${(hv.latencyMedianUs / 1000).toFixed(1)} ms; ${v.codeStats.reads} codes read on the viewer's page`);
  assert.equal(v.codeStats.mismatches, 0, 'a picture showed another frame than its RTP timestamp names');

  // Where the viewer's pictures came from: A published them for other
  // nodes and B received them; never the other way round (B owns
  // nothing, and A's own page is A's to serve).
  const [a, b] = await Promise.all([metrics(owner.base), metrics(gateway.base)]);
  const relay = (m, what) => m.get(`syncreel_media_relay_${what}_total`);
  t.diagnostic(`media relay: A published ${relay(a, 'published')}, received ${relay(a, 'received')}, dropped `
    + `${relay(a, 'dropped')}; B published ${relay(b, 'published')}, received ${relay(b, 'received')}`);
  assert.ok(relay(a, 'published') > 0, 'A published no pictures for other nodes');
  assert.ok(relay(b, 'received') > 0, 'B received no pictures from A');
  assert.equal(relay(b, 'published'), 0, 'B published pictures');
  assert.equal(relay(a, 'received'), 0, 'A received pictures from another node');

  // And the browser's side: the viewer's peer talks to a UDP port of B's
  // process and was given candidates of B's only. The host's peer, for
  // contrast, talks to A (so the check does tell the two apart).
  const [aPorts, bPorts] = [udpPortsOf(owner.pid), udpPortsOf(gateway.pid)];
  const [viewerIce, hostIce] = [await remoteCandidates(viewer), await remoteCandidates(host)];
  const where = (c) => `${c.address}:${c.port}`;
  t.diagnostic(`viewer's peer talks to ${viewerIce?.chosen && where(viewerIce.chosen)}, given `
    + `${viewerIce?.given.map(where).join(' ')}; UDP ports of A ${[...aPorts].join(' ')}, of B ${[...bPorts].join(' ')}`);
  assert.ok(viewerIce?.chosen, 'the viewer\'s connected peer has a selected candidate pair');
  assert.equal(viewerIce.chosen.protocol, 'udp');
  assert.ok(bPorts.has(viewerIce.chosen.port) && !aPorts.has(viewerIce.chosen.port),
    `the viewer talks to port ${viewerIce.chosen.port}: not B's alone`);
  const notB = viewerIce.given.filter((c) => !bPorts.has(c.port));
  assert.deepEqual(notB, [], 'the viewer was given candidates that are not B\'s');
  assert.ok(hostIce?.chosen && aPorts.has(hostIce.chosen.port) && !bPorts.has(hostIce.chosen.port),
    `the host talks to ${JSON.stringify(hostIce?.chosen)}, not A's alone`);

  // The exact-frame stills a page fetches while seeking come from its
  // own node too: any node answers them from the shared record and media
  // root, so nothing is refused on either page.
  assert.deepEqual(viewer.refused, [], 'the viewer\'s page was refused something');
  assert.deepEqual(host.refused, [], 'the host\'s page was refused something');
  assertNoPageErrors([host, viewer]);
});
