// A stock automerge-repo client syncing one document with the wardcheck relay.
//
//   node sync.mjs RELAY_URL TOKEN DOCUMENT_ID [COMMENT_TEXT]
//   (or WARDCHECK_RELAY_URL, WARDCHECK_TOKEN, WARDCHECK_DOCUMENT_ID, WARDCHECK_COMMENT)
//
// RELAY_URL is the relay's base URL (http://127.0.0.1:8080) or a ws:// URL of /v1/sync.
// It finds the document through the relay (no local storage) and waits until it has all
// of it, prints one JSON line {"period", "unit_id", "c01_note", "comments",
// "sync_messages"}, appends two comments (see below), waits until the relay's heads (sent
// back in its sync replies) equal ours, disconnects and exits 0. Any failure, or 20 s
// without success, exits 1 with a message on stderr.

import { ImmutableString, Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

const TIMEOUT_MS = Number(process.env.WARDCHECK_INTEROP_TIMEOUT_MS ?? 20_000);

function fail(message) {
  process.stderr.write(`interop: ${message}\n`);
  process.exit(1);
}

const [relayArg, tokenArg, docArg, commentArg] = process.argv.slice(2);
const relay = relayArg ?? process.env.WARDCHECK_RELAY_URL;
const token = tokenArg ?? process.env.WARDCHECK_TOKEN;
const documentId = docArg ?? process.env.WARDCHECK_DOCUMENT_ID;
const commentText =
  commentArg ?? process.env.WARDCHECK_COMMENT ?? "comment from automerge-repo (JS)";
if (!relay || !token || !documentId) {
  fail("usage: node sync.mjs RELAY_URL TOKEN DOCUMENT_ID [COMMENT_TEXT]");
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

// The adapter throws from its socket's error handler (e.g. "Unexpected server response:
// 401" for a refused token): report it like any other failure.
process.on("uncaughtException", e => fail(e?.message ?? String(e)));

const timer = setTimeout(
  () => fail(`timed out after ${TIMEOUT_MS} ms`),
  TIMEOUT_MS,
);

// Retry a dropped connection after 1 s (within the overall timeout). A refused upgrade
// (bad token: 401) makes the adapter throw, which ends the process with that error.
const adapter = new WebSocketClientAdapter(syncUrl(relay, token), 1000);
const repo = new Repo({ network: [adapter] });
// How many sync messages the relay sent (a long history comes in several).
let syncMessages = 0;
adapter.on("message", message => {
  if (message.type === "sync") syncMessages += 1;
});

// Comparing heads as sets.
const sameHeads = (a, b) =>
  Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
  [...a].sort().join() === [...b].sort().join();

// Resolves once the relay's heads (as its last sync message told them) equal ours: it has
// everything we have and we have everything it has. Polled, because either side may move.
function inSync(handle, storageId) {
  return new Promise(resolve => {
    const poll = setInterval(() => {
      if (sameHeads(handle.getSyncInfo(storageId)?.lastHeads, handle.heads())) {
        clearInterval(poll);
        resolve();
      }
    }, 10);
  });
}

try {
  const handle = await repo.find(documentId);
  // The relay's peer, and the storage id it announced: its heads are tracked under it.
  const relayPeer = repo.peers[0];
  const storageId = relayPeer && repo.getStorageIdOfPeer(relayPeer);
  if (!storageId) fail("the relay announced no storageId in its peer metadata");
  // `find` resolves as soon as the document has any content: the relay sends a long
  // history in several bounded messages, so wait for the rest before reading.
  await inSync(handle, storageId);

  const doc = handle.doc();
  if (!doc || doc.period === undefined || doc.unit === undefined) {
    fail(`document ${documentId} does not read as an assessment`);
  }
  // Wardcheck writes plain (immutable) strings: they read as ImmutableString here; notes
  // are collaborative text, which reads as a string.
  const out = {
    period: String(doc.period),
    unit_id: String(doc.unit.id),
    c01_note: doc.criteria?.c01?.note ?? null,
    comments: (doc.comments ?? []).length,
    sync_messages: syncMessages,
  };
  process.stdout.write(JSON.stringify(out) + "\n");

  // Two comments in the wardcheck schema, { criterion?, by, device, at, text }: one with
  // scalar strings (ImmutableString) as wardcheck writes them, one with plain JS strings,
  // which Automerge 3 stores as collaborative text (wardcheck reads both).
  handle.change(d => {
    d.comments.push({
      by: new ImmutableString("interop-js"),
      device: new ImmutableString(String(repo.peerId)),
      at: Date.now(),
      text: new ImmutableString(commentText),
    });
    d.comments.push({
      criterion: "c01",
      by: "interop-js",
      device: String(repo.peerId),
      at: Date.now(),
      text: `${commentText} (plain strings)`,
    });
  });
  await inSync(handle, storageId);
  process.stderr.write("interop: the relay has our change\n");
} catch (e) {
  fail(e?.stack ?? String(e));
}

clearTimeout(timer);
await repo.shutdown();
process.exit(0);
