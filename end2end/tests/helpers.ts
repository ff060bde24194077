import { expect, type Page } from '@playwright/test';

/** The first admin's password, printed by Steward at its first start (scripts/test.sh reads it). */
export const adminPassword = process.env.STEWARD_E2E_ADMIN_PASSWORD ?? '';

/** Waits until the wasm has hydrated the page (set by the frontend's hydrate()). */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated]')).toHaveCount(1);
}

/** Signs in through the sign-in page, with or without JavaScript. */
export async function signIn(page: Page, username: string, password: string, options = { js: true }) {
  await page.goto('/login');
  if (options.js) await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).not.toHaveURL(/\/login/);
  // The page after signing in loads afresh; let it finish before the test moves on.
  if (options.js) await hydrated(page);
}

/** Signs out with the header's button and waits for the sign-in page. */
export async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await hydrated(page);
}

/** On the Users page (hydrated), adds a user and returns the generated password. */
export async function addUser(page: Page, username: string, role: string) {
  await page.goto('/users');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Role', { exact: true }).selectOption(role);
  await page.getByRole('button', { name: 'Add user' }).click();
  const password = page.getByTestId('new-password');
  await expect(password).toBeVisible();
  await expect(page.locator(`tr[data-user="${username}"]`)).toBeVisible();
  return (await password.textContent()) ?? '';
}
