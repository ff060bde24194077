import { expect, test } from '@playwright/test';
import { addUser, adminPassword, hydrated, signIn, signOut } from './helpers';

test('a visitor is sent to the sign-in page, and wrong passwords are refused', async ({ page }) => {
  await page.goto('/environments');
  await expect(page).toHaveURL(/\/login\?next=\/environments$/);
  await hydrated(page);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong username or password.');
  await page.screenshot({ path: 'test-results/login-refused.png' });
});

test('the admin creates an operator; the operator has no Users section', async ({ page }) => {
  await signIn(page, 'admin', adminPassword);
  await expect(page.getByRole('link', { name: 'Users' })).toBeVisible();
  const password = await addUser(page, 'olivia', 'operator');
  await page.screenshot({ path: 'test-results/users-page.png', fullPage: true });

  await signOut(page);

  await signIn(page, 'olivia', password);
  await expect(page.locator('.user-box')).toContainText('olivia');
  await expect(page.locator('.user-box')).toContainText('operator');
  await expect(page.getByRole('link', { name: 'Environments' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await page.goto('/users');
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
  await expect(page.locator('tr[data-user]')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/operator-users-refused.png' });
});

test('a viewer can read but cannot start or manage anything', async ({ page }) => {
  await signIn(page, 'admin', adminPassword);
  const password = await addUser(page, 'victor', 'viewer');
  await signOut(page);

  await signIn(page, 'victor', password);
  await page.goto('/environments');
  await expect(page.locator('.env-card')).toHaveCount(4);
  await page.goto('/audit');
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  await expect(page.locator('table.audit')).toContainText('login');
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: /Add user|Reset password|Disable/ })).toHaveCount(0);

  // The server says no, whatever the page shows: call the endpoint directly with the session.
  const response = await page.request.post('/api/users/create', {
    form: { username: 'sneaky', role: 'admin' },
    headers: { accept: 'application/json' },
  });
  expect(await response.text()).toBe('"Forbidden"');
});

test('a user changes their own password', async ({ page }) => {
  await signIn(page, 'admin', adminPassword);
  const first = await addUser(page, 'carol', 'viewer');
  await signOut(page);

  await signIn(page, 'carol', first);
  await page.goto('/account');
  await hydrated(page);
  await page.getByLabel('Current password').fill(first);
  await page.getByLabel('New password (at least 12 characters)').fill('carol has a new password');
  await page.getByLabel('New password again').fill('carol has a new password');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByRole('status')).toHaveText('Your password was changed.');
  await signOut(page);
  await signIn(page, 'carol', 'carol has a new password');
  await expect(page.locator('.user-box')).toContainText('carol');
});
