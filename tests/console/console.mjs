// Drives the supervisors' console in headless Chromium (Debian's /usr/bin/chromium, never
// a downloaded browser) for tests/e2e/console.rs:
//
//   node console.mjs <relay url> <user> <password> <screenshot folder> <reason>
//
// Signs in (after one wrong password), searches the overview, opens Ngô Mây's checklist,
// approves c01, returns c02 with <reason>, opens a full photo, settles the first conflict
// by keeping its second value, opens the dossier, switches to English and signs out,
// saving a screenshot of every page. Prints one JSON line: {"settled": <kept value>}.
// Any failed expectation throws (exit code 1).

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, user, password, shots, reason] = process.argv.slice(2);
if (!reason) {
  console.error("usage: node console.mjs <url> <user> <password> <screenshots> <reason>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "wardcheck-chromium-"));

function expect(condition, what) {
  if (!condition) throw new Error(`expected: ${what}`);
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  // A tablet in portrait (iPad Air).
  viewport: { width: 820, height: 1180 },
  locale: "vi-VN",
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20000);
  // The pages must run under their Content-Security-Policy without a violation.
  const violations = [];
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) violations.push(message.text());
  });
  let n = 0;
  const shot = (name, target = page) =>
    target.screenshot({ path: join(shots, `${String(++n).padStart(2, "0")}-${name}.png`), fullPage: true });
  const text = (selector) => page.locator(selector).first().innerText();

  // Sign-in: every console page sends a stranger there.
  await page.goto(`${url}/console/`);
  expect(page.url().endsWith("/console/login"), `the sign-in page, not ${page.url()}`);
  await shot("sign-in");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", "not the password");
  await page.click("form.signin button[type=submit]");
  expect((await text(".error")).includes("không đúng"), "a sign-in error in Vietnamese");
  await shot("sign-in-error");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("form.signin button[type=submit]");
  await page.waitForURL(`${url}/console/`);
  await shot("overview");

  // Overview: two wards; the search ignores diacritics.
  expect((await page.locator("#units tbody tr").count()) === 2, "two wards in scope");
  await page.fill("input[name=q]", "ngo may");
  await page.click("form.filters button[type=submit]");
  await page.waitForURL(/q=ngo\+may/);
  expect((await page.locator("#units tbody tr").count()) === 1, "one ward found by 'ngo may'");
  await shot("overview-search");

  // The unit's checklist.
  await page.click("#units a:has-text('Ngô Mây')");
  await page.waitForURL(/\/console\/d\/[^/]+$/);
  const unitUrl = page.url();
  expect((await page.locator("#c-c01 .thumbs img").count()) >= 1, "thumbnails of c01");
  await shot("unit");

  // A criterion: approve it.
  await page.click("#c-c01 td a");
  await page.waitForURL(/\/c\/c01$/);
  expect((await page.locator(".gallery figure").count()) >= 1, "an evidence gallery");
  expect((await page.locator(".gallery img").first().evaluate((img) => img.naturalWidth)) > 0, "a thumbnail loads");
  expect((await text(".gallery figcaption")).includes("trong địa bàn"), "the photo's GPS inside the unit");
  await shot("criterion");
  const [photo] = await Promise.all([context.waitForEvent("page"), page.click(".gallery a")]);
  await photo.waitForLoadState();
  expect((await photo.evaluate(() => document.contentType)) === "image/jpeg", "the full photo");
  await shot("photo", photo);
  await photo.close();
  await page.click("button[name=approve]");
  await page.waitForURL(/\/c\/c01$/);
  expect((await text("h1 .badge")) === "đạt", "c01 approved");
  await shot("criterion-approved");

  // Another: return it with a reason.
  await page.goto(unitUrl);
  await page.click("#c-c02 td a");
  await page.waitForURL(/\/c\/c02$/);
  await page.fill("input[name=reason]", reason);
  await page.click("button[name=return]");
  await page.waitForURL(/\/c\/c02$/);
  expect((await text("h1 .badge")) === "trả lại", "c02 returned");
  expect((await page.content()).includes(reason), "the reason shown");
  await shot("criterion-returned");

  // The conflicts inbox: keep the second value of the first conflict.
  await page.click("header a[href='/console/conflicts']");
  await page.waitForURL(/\/console\/conflicts$/);
  const conflict = page.locator("form.conflict").first();
  expect((await conflict.innerText()).includes("indicators/incidents"), "the indicator conflict");
  await shot("conflicts");
  const keep = conflict.locator("input[type=radio]").nth(1);
  const settled = JSON.parse(await keep.getAttribute("value"));
  await keep.check();
  await conflict.locator("button[type=submit]").click();
  await page.waitForURL(/\/console\/conflicts$/);
  expect((await page.locator("form.conflict").count()) === 0, "no conflict left");
  await shot("conflicts-settled");

  // Exports: the dossier page, the progress CSV link.
  await page.goto(`${unitUrl}/dossier`);
  expect((await page.locator("section.card").count()) >= 20, "every criterion in the dossier");
  // The print button's inline handler is allowed by its hash (print itself is stubbed).
  await page.evaluate(() => { window.print = () => { window.printed = true; }; });
  await page.click("button[onclick]");
  expect(await page.evaluate(() => window.printed === true), "the print button works under the CSP");
  await shot("dossier");

  // English, then sign out.
  await page.goto(`${url}/console/`);
  await page.click("header a[href='/console/lang/en']");
  await page.waitForURL(`${url}/console/`);
  expect((await page.locator("html").getAttribute("lang")) === "en", "English pages");
  await shot("overview-english");
  await page.click("header form button");
  await page.waitForURL(`${url}/console/login`);
  await page.goto(`${url}/console/`);
  expect(page.url().endsWith("/console/login"), "signed out");

  expect(violations.length === 0, `no CSP violation, got ${violations.join(" | ")}`);
  console.log(JSON.stringify({ settled, screenshots: n }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
