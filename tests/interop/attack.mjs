// A modified client: a stock automerge-repo client with a real device token making one
// change a wardcheck app never makes, to see whether the relay takes it.
//
//   node attack.mjs RELAY_URL TOKEN DOCUMENT_ID ATTACK USER [THEN_DOCUMENT_ID]
//
// It finds the document through the relay, waits until it has all of it, makes the
// change named ATTACK (see ATTACKS below) as USER (the token's user) and waits for the
// relay's answer: its heads equal ours (it took the change) or `doc-unavailable` for the
// document (it refused it; wardcheck's relay says why in a `reason` field). It prints one
// JSON line {"outcome": "accepted" | "refused", "reason"} and, with THEN_DOCUMENT_ID, goes
// on over the same connection to add an ordinary comment to that document and adds
// {"then": "accepted" | "refused"}: a refusal must not end the sync of other documents.
// Exits 0 once it knows; 1 on any failure or after 20 s.

import {
  Float64, Uint, change as amChange, clone, decodeChange, deleteAt, encodeChange,
  encodeSyncMessage, getLastLocalChange, getObjectId,
} from "@automerge/automerge/slim";
import { connect, deadline, fail, fetchWhole, inSync } from "./relay.mjs";

const [relay, token, documentId, attack, user, thenDocumentId] = process.argv.slice(2);
if (!relay || !token || !documentId || !attack || !user) {
  fail("usage: node attack.mjs RELAY_URL TOKEN DOCUMENT_ID ATTACK USER [THEN_DOCUMENT_ID]");
}

/** The index of criterion `c`'s first log entry whose action is `action`. */
function entryIndex(d, c, action) {
  const index = d.criteria[c].log.findIndex(e => String(e.action) === action);
  if (index < 0) fail(`no ${action} entry on ${c}`);
  return index;
}

/** The first evidence record of criterion `c`. */
function firstRecord(d, c) {
  const key = Object.keys(d.criteria[c].evidence)[0];
  if (!key) fail(`no evidence on ${c}`);
  return d.criteria[c].evidence[key];
}

/** A status log entry written the usual automerge-js way: one map literal. */
const step = (action, round) => ({ action, round, by: user, device: "js", at: Date.now() });

const ATTACKS = {
  // Issue 13, item 1: the supervisor's return on c01 becomes an approval.
  "rewrite-return": d => {
    d.criteria.c01.log[entryIndex(d, "c01", "return")].action = "approve";
  },
  // Item 2: the return disappears.
  "erase-return": d => deleteAt(d.criteria.c01.log, entryIndex(d, "c01", "return")),
  // Item 3: the genesis rewritten.
  "rewrite-unit-id": d => { d.unit.id = "kontum-elsewhere"; },
  "rewrite-unit-name": d => { d.unit.name = "Công an phường của tỉnh khác"; },
  "rewrite-period": d => { d.period = "2024"; },
  "template-parts": d => { d.template.parts = new Uint(Number(d.template.parts) + 1); },
  // Item 4: a verified photo moved.
  "move-evidence": d => { firstRecord(d, "c03").lat = new Float64(10.5); },
  // Item 5: a step in a round far ahead of every review. (Inside a literal automerge-js
  // would store the Uint as a map: set it by assignment.)
  "future-round": d => {
    const log = d.criteria.c02.log;
    log.push(step("submit", 0));
    log[log.length - 1].round = new Uint(Number.MAX_SAFE_INTEGER);
  },
  // Item 6: entries as map literals (automerge-js stores `round: 0` as a float). An
  // officer's submit is fine; an officer's approval is not.
  "literal-submit": d => { d.criteria.c02.log.push(step("submit", 0)); },
  "literal-approve": d => { d.criteria.c02.log.push(step("approve", 0)); },
};

// Changes automerge-js would never make: an honest change rewritten op by op
// (decodeChange / encodeChange) and sent as a raw sync message. Each takes the document
// and returns the forged change's bytes.
const FORGERIES = {
  // An officer's ordinary new log entry on c02 whose first operation also names the
  // supervisor's return on c01 as its predecessor, which Automerge would hide.
  "forged-pred": d => {
    const returnId = getObjectId(d.criteria.c01.log[entryIndex(d, "c01", "return")]);
    const mine = amChange(clone(d), x => { x.criteria.c02.log.push(step("submit", 0)); });
    const decoded = decodeChange(getLastLocalChange(mine));
    decoded.ops[0].pred = [...decoded.ops[0].pred, returnId];
    return encodeChange(decoded);
  },
};

const change = ATTACKS[attack];
const forgery = FORGERIES[attack];
if (!change && !forgery) {
  fail(`unknown attack ${attack}; one of ${[...Object.keys(ATTACKS), ...Object.keys(FORGERIES)].join(", ")}`);
}

const timer = deadline();
const { repo, adapter } = connect(relay, token);
const refusals = new Map();
// What the relay answered, reported when it does not refuse a forgery.
const seen = [];
adapter.on("message", message => {
  seen.push(`${message.type}:${message.documentId}:${message.reason ?? ""}`);
  if (message.type === "doc-unavailable") {
    refusals.set(message.documentId, message.reason ?? "unavailable");
  }
});

/** Makes `fn` on `handle` and waits until the relay takes it or refuses the document. */
async function changeAndWait(handle, storageId, id, fn) {
  handle.change(fn);
  const taken = inSync(handle, storageId).then(() => ({ outcome: "accepted" }));
  const refused = new Promise(resolve => {
    const poll = setInterval(() => {
      if (refusals.has(id)) {
        clearInterval(poll);
        resolve({ outcome: "refused", reason: refusals.get(id) });
      }
    }, 10);
  });
  return Promise.race([taken, refused]);
}

/** Sends the forged change `bytes` to the relay and waits for its refusal (5 s). */
async function forgeAndWait(bytes) {
  const message = encodeSyncMessage({
    heads: [decodeChange(bytes).hash],
    need: [],
    have: [],
    changes: [bytes],
  });
  adapter.send({
    type: "sync",
    senderId: repo.peerId,
    targetId: repo.peers[0],
    documentId,
    data: message,
  });
  for (let waited = 0; waited < 5000; waited += 10) {
    if (refusals.has(documentId)) return { outcome: "refused", reason: refusals.get(documentId) };
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  return { outcome: "not refused", seen, documentId };
}

try {
  const { handle, storageId } = await fetchWhole(repo, documentId);
  const out = forgery
    ? await forgeAndWait(forgery(handle.doc()))
    : await changeAndWait(handle, storageId, documentId, change);
  if (thenDocumentId) {
    const other = await fetchWhole(repo, thenDocumentId);
    const then = await changeAndWait(other.handle, other.storageId, thenDocumentId, d => {
      d.comments.push({ by: user, device: "js", at: Date.now(), text: "still syncing" });
    });
    out.then = then.outcome;
  }
  process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
  fail(e?.stack ?? String(e));
}

clearTimeout(timer);
await repo.shutdown();
process.exit(0);
