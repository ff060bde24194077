import * as fs from 'node:fs';
import { expect, test } from '@playwright/test';
import { adminPassword, hydrated, signIn } from './helpers';

// The audit page as a reviewer uses it: filters in the address, with and without JavaScript,
// links both ways, the chain's last verification, and the export of what a filter matches.

test('filter the audit log, follow an event to its job and back, export the filtered set', async ({
  page,
}, testInfo) => {
  // A failed sign-in (a wrong password) to find later, then a job to follow.
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await signIn(page, 'admin', adminPassword);
  await page.goto('/environments/demo/backups');
  await hydrated(page);
  const form = page.getByTestId('backup-now');
  await form.getByLabel('Description').fill(`e2e: audited ${Date.now()}`);
  await form.getByRole('button', { name: 'Back up now' }).click();
  await expect(page).toHaveURL(/\/jobs\/\d+$/);
  const jobId = page.url().split('/').pop() ?? '';
  await hydrated(page);
  await expect(page.getByTestId('job-status')).toHaveText('succeeded', { timeout: 30_000 });

  // The form puts every filter in the address.
  await page.goto('/audit');
  await hydrated(page);
  await expect(page.locator('.chain-status')).toContainText('Hash chain verified');
  await expect(page.locator('.chain-status')).toContainText('intact');
  const filter = page.locator('form.audit-filter');
  await filter.getByLabel('Action').fill('login');
  await filter.getByLabel('Outcome').selectOption('failed');
  await filter.getByRole('button', { name: 'Filter' }).click();
  // A plain GET form: every field is in the address, the empty ones too.
  await expect(page).toHaveURL(/\/audit\?.*action=login.*outcome=failed/);
  const rows = page.locator('table.audit tbody tr');
  await expect(rows.first()).toBeVisible();
  for (const outcome of await rows.locator('.outcome').allTextContents()) expect(outcome).toBe('failed');
  await page.screenshot({ path: 'test-results/audit-filtered.png', fullPage: true });

  // A family: every restore.* or job.* event of the job, from the job's own link.
  await page.goto(`/jobs/${jobId}`);
  await hydrated(page);
  await page.getByRole('link', { name: 'Events about this job' }).click();
  await expect(page).toHaveURL(new RegExp(`/audit\\?target=${jobId}$`));
  await hydrated(page);
  await expect(rows).toHaveCount(2);
  await expect(page.locator('table.audit')).toContainText('job.request');
  await expect(page.locator('table.audit')).toContainText('job.finish');
  await rows.first().getByRole('link', { name: jobId, exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/jobs/${jobId}$`));

  // The export of a filter: CSV, oldest first, only what matches.
  await page.goto('/audit?action=job.*&environment=demo');
  await hydrated(page);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'CSV' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^steward-audit-\d+\.csv$/);
  const file = testInfo.outputPath('audit.csv');
  await download.saveAs(file);
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  expect(lines[0]).toBe('id,time_utc,actor,client_ip,action,target,environment,outcome,detail');
  expect(lines.length).toBeGreaterThan(2);
  for (const line of lines.slice(1)) expect(line).toMatch(/^\d+,[^,]+,[^,]*,[^,]*,job\.[a-z]+,/);
});

test('the audit filters work without JavaScript', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, 'admin', adminPassword, { js: false });
  await page.goto('/audit');
  const filter = page.locator('form.audit-filter');
  // A sign-in is made by nobody yet: it is about the username.
  await filter.getByLabel('About').fill('admin');
  await filter.getByLabel('Action').fill('login');
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/\/audit\?.*action=login.*target=admin/);
  const actions = await page.locator('table.audit tbody tr td:nth-child(4)').allTextContents();
  expect(actions.length).toBeGreaterThan(0);
  for (const action of actions) expect(action).toBe('login');
  await expect(filter.getByLabel('About')).toHaveValue('admin');
  // A date that is not one is refused, and the form keeps what was typed.
  await page.goto('/audit?from=someday');
  await expect(page.getByText('is not a date like 2026-12-01')).toBeVisible();
  await page.screenshot({ path: 'test-results/audit-no-js.png', fullPage: true });
  await context.close();
});
