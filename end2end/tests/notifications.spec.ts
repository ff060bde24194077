import http from 'node:http';
import { expect, test } from '@playwright/test';
import { addUser, adminPassword, hydrated, signIn, signOut } from './helpers';

// Notifications. scripts/test.sh configures one webhook target, "e2e-hook", at
// 127.0.0.1:STEWARD_E2E_HOOK_PORT; this spec is its receiver.

const hookPort = Number(process.env.STEWARD_E2E_HOOK_PORT ?? 0);
const received: { kind: string; summary: string }[] = [];
let receiver: http.Server;

test.beforeAll(async () => {
  receiver = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push(JSON.parse(body));
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((listening) => receiver.listen(hookPort, '127.0.0.1', listening));
});

test.afterAll(() => receiver.close());

test('an admin sends a test notification and sees it delivered in the history', async ({ page }) => {
  await signIn(page, 'admin', adminPassword);
  await page.getByRole('link', { name: 'Notifications' }).click();
  await expect(page).toHaveURL(/\/notifications$/);
  await hydrated(page);
  const targets = page.getByTestId('targets');
  const hook = targets.locator('tr', { hasText: 'e2e-hook' });
  await expect(hook).toContainText(`POST http://127.0.0.1:${hookPort}/hook`);
  await expect(page.getByRole('region', { name: 'Rules' })).toContainText('every notification goes to every target');

  await hook.getByRole('button', { name: 'Send test' }).click();
  await expect(page.getByTestId('test-result')).toHaveText(/^Delivered test notification #\d+ to e2e-hook in \d+ ms\.$/);
  const history = page.getByTestId('notification-history');
  const row = history.locator('tr', { hasText: 'Test notification from Steward, sent by admin to e2e-hook' }).first();
  await expect(row).toContainText('delivered');
  await expect(row).toContainText('1 attempt');
  expect(received.filter((body) => body.kind === 'test')).toHaveLength(1);
  await page.screenshot({ path: 'test-results/notifications.png', fullPage: true });

  // Filters are links in the address: nothing failed.
  await page.getByRole('navigation', { name: 'Delivery' }).getByRole('link', { name: 'failed' }).click();
  await expect(page).toHaveURL(/\/notifications\?state=failed$/);
  await expect(page.getByText('No notifications match.')).toBeVisible();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('Send test is a plain form that lands on the target\'s history', async ({ page }) => {
    await signIn(page, 'admin', adminPassword, { js: false });
    await page.goto('/notifications');
    const before = received.length;
    await page.getByTestId('targets').locator('tr', { hasText: 'e2e-hook' }).getByRole('button', { name: 'Send test' }).click();
    await expect(page).toHaveURL(/\/notifications\?target=e2e-hook$/);
    await expect(page.getByTestId('notification-history').locator('tr').nth(1)).toContainText('delivered');
    expect(received.length).toBe(before + 1);
  });
});

test('a viewer sees no targets, and the server refuses them', async ({ page }) => {
  await signIn(page, 'admin', adminPassword);
  const username = `nadia${Date.now()}`;
  const password = await addUser(page, username, 'viewer');
  await signOut(page);
  await signIn(page, username, password);
  await expect(page.getByRole('link', { name: 'Notifications' })).toHaveCount(0);
  await page.goto('/notifications');
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
  await expect(page.getByTestId('targets')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText('e2e-hook');
  const response = await page.request.post('/api/notifications/settings', {
    form: {},
    headers: { accept: 'application/json' },
  });
  expect(response.status()).toBe(403);

  // What went wrong is no secret to a viewer: the environment page lists its recent alerts,
  // without the way to the deliveries.
  await page.goto('/environments/demo');
  await hydrated(page);
  const alerts = page.getByTestId('recent-alerts');
  await expect(alerts.getByRole('heading', { name: 'Recent alerts' })).toBeVisible();
  await expect(alerts.getByRole('link', { name: 'All notifications' })).toHaveCount(0);
});
