// A stock automerge-repo client syncing one document with the wardcheck relay.
//
//   node sync.mjs RELAY_URL TOKEN DOCUMENT_ID [COMMENT_TEXT [USER]]
//   (or WARDCHECK_RELAY_URL, WARDCHECK_TOKEN, WARDCHECK_DOCUMENT_ID, WARDCHECK_COMMENT,
//   WARDCHECK_USER)
//
// RELAY_URL is the relay's base URL (http://127.0.0.1:8080) or a ws:// URL of /v1/sync.
// It finds the document through the relay (no local storage) and waits until it has all
// of it, prints one JSON line {"period", "unit_id", "c01_note", "comments",
// "sync_messages"}, appends two comments by USER, the token's user (the relay refuses
// entries in another user's name; see below), waits until the relay's heads (sent
// back in its sync replies) equal ours, disconnects and exits 0. Any failure, or 20 s
// without success, exits 1 with a message on stderr.

import { ImmutableString } from "@automerge/automerge-repo";
import { connect, deadline, fail, fetchWhole, inSync } from "./relay.mjs";

const [relayArg, tokenArg, docArg, commentArg, userArg] = process.argv.slice(2);
const relay = relayArg ?? process.env.WARDCHECK_RELAY_URL;
const token = tokenArg ?? process.env.WARDCHECK_TOKEN;
const documentId = docArg ?? process.env.WARDCHECK_DOCUMENT_ID;
const commentText =
  commentArg ?? process.env.WARDCHECK_COMMENT ?? "comment from automerge-repo (JS)";
const user = userArg ?? process.env.WARDCHECK_USER ?? "interop-js";
if (!relay || !token || !documentId) {
  fail("usage: node sync.mjs RELAY_URL TOKEN DOCUMENT_ID [COMMENT_TEXT [USER]]");
}

const timer = deadline();
const { repo, adapter } = connect(relay, token);
// How many sync messages the relay sent (a long history comes in several).
let syncMessages = 0;
adapter.on("message", message => {
  if (message.type === "sync") syncMessages += 1;
});

try {
  const { handle, storageId } = await fetchWhole(repo, documentId);

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
      by: new ImmutableString(user),
      device: new ImmutableString(String(repo.peerId)),
      at: Date.now(),
      text: new ImmutableString(commentText),
    });
    d.comments.push({
      criterion: "c01",
      by: user,
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
