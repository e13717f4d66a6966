// What the interop scripts share: connecting a stock automerge-repo client to the
// wardcheck relay, waiting until the relay holds what we hold, and failing loudly.

import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

export const TIMEOUT_MS = Number(process.env.WARDCHECK_INTEROP_TIMEOUT_MS ?? 20_000);

export function fail(message) {
  process.stderr.write(`interop: ${message}\n`);
  process.exit(1);
}

// The adapter throws from its socket's error handler (e.g. "Unexpected server response:
// 401" for a refused token): report it like any other failure.
process.on("uncaughtException", e => fail(e?.message ?? String(e)));

/** Fails the script after `TIMEOUT_MS`; returns the timer, to clear on success. */
export function deadline() {
  return setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS);
}

function syncUrl(base, token) {
  const url = new URL(base);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  if (!url.pathname.endsWith("/v1/sync")) {
    url.pathname = url.pathname.replace(/\/$/, "") + "/v1/sync";
  }
  url.searchParams.set("token", token);
  return url.toString();
}

/**
 * A repo syncing with the relay at `relay` (base URL or ws:// URL) with `token`, retrying
 * a dropped connection after 1 s. Returns { repo, adapter }.
 */
export function connect(relay, token) {
  const adapter = new WebSocketClientAdapter(syncUrl(relay, token), 1000);
  const repo = new Repo({ network: [adapter] });
  return { repo, adapter };
}

// Comparing heads as sets.
const sameHeads = (a, b) =>
  Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
  [...a].sort().join() === [...b].sort().join();

/**
 * Resolves once the relay's heads (as its last sync message told them) equal ours: it
 * has everything we have and we have everything it has. Polled, because either side
 * may move.
 */
export function inSync(handle, storageId) {
  return new Promise(resolve => {
    const poll = setInterval(() => {
      if (sameHeads(handle.getSyncInfo(storageId)?.lastHeads, handle.heads())) {
        clearInterval(poll);
        resolve();
      }
    }, 10);
  });
}

/**
 * Finds `documentId` through the relay and waits until we hold all of it. Returns
 * { handle, storageId }.
 */
export async function fetchWhole(repo, documentId) {
  const handle = await repo.find(documentId);
  // The relay's peer, and the storage id it announced: its heads are tracked under it.
  const relayPeer = repo.peers[0];
  const storageId = relayPeer && repo.getStorageIdOfPeer(relayPeer);
  if (!storageId) fail("the relay announced no storageId in its peer metadata");
  // `find` resolves as soon as the document has any content: the relay sends a long
  // history in several bounded messages, so wait for the rest before reading.
  await inSync(handle, storageId);
  return { handle, storageId };
}
