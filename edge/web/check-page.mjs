// Loads index.html in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), waits until the page has trained every epoch, prints the trace lines
// and the accuracy the page wrote into its DOM, and saves a screenshot of the page.
// Exits non-zero if the page reported an error, did not finish within the timeout, or
// printed an accuracy below 95%.
//
// usage: node check-page.mjs URL SCREENSHOT.png
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node check-page.mjs URL SCREENSHOT.png');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 760, height: 400 } });
  page.on('pageerror', (err) => { console.error(`page error: ${err.message}`); failed = true; });
  await page.goto(url);
  await page.waitForSelector('body[data-done]', { timeout: 60_000 });
  const done = await page.getAttribute('body', 'data-done');
  const trace = await page.textContent('#trace');
  const accuracy = await page.textContent('#accuracy');
  if (trace) console.log(trace);
  console.log(`page accuracy ${accuracy}`);
  await page.locator('#view').screenshot({ path: screenshot });
  const m = /^(\d+)\/(\d+) /.exec(accuracy ?? '');
  if (done !== 'true' || !m) {
    console.error(`the page did not finish training: ${accuracy}`);
    failed = true;
  } else if (Number(m[1]) * 100 < Number(m[2]) * 95) {
    console.error(`page accuracy ${m[1]}/${m[2]} is below 95%`);
    failed = true;
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
