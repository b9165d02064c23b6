'use client';

import { useState } from 'react';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useAuth, useRedirectWhenSignedIn } from '@/context/AuthContext';
import { authService } from '@/lib/authService';

// The API's own rule (app/users/schemas.py); shown up front so nobody learns it from an error.
const MIN_PASSWORD_LENGTH = 8;

/** Create an account, then log in with it and go to the dashboard. */
export default function SignupPage() {
  const { login } = useAuth();
  const router = useRouter();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [fullName, setFullName] = useState('');
  const [error, setError] = useState(null);
  const [submitting, setSubmitting] = useState(false);

  useRedirectWhenSignedIn();

  async function handleSubmit(event) {
    event.preventDefault();
    setError(null);
    setSubmitting(true);
    try {
      await authService.register({ email, password, fullName: fullName.trim() });
    } catch (err) {
      setError(err.message || 'Could not create the account');
      setSubmitting(false);
      return;
    }
    try {
      await login(email, password);
      router.push('/dashboard');
    } catch (err) {
      // The account exists; only the login failed.
      setError(`Your account was created, but logging in failed: ${err.message}`);
      setSubmitting(false);
    }
  }

  return (
    <main className="login-page">
      <form className="card login-form" onSubmit={handleSubmit} noValidate>
        <h1>Sign up</h1>

        <label htmlFor="signup-email">Email</label>
        <input
          id="signup-email"
          data-testid="signup-email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />

        <label htmlFor="signup-name">Full name (optional)</label>
        <input
          id="signup-name"
          data-testid="signup-name"
          autoComplete="name"
          value={fullName}
          onChange={(e) => setFullName(e.target.value)}
        />

        <label htmlFor="signup-password">Password</label>
        <input
          id="signup-password"
          data-testid="signup-password"
          type="password"
          autoComplete="new-password"
          required
          minLength={MIN_PASSWORD_LENGTH}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <span className="field-hint">At least {MIN_PASSWORD_LENGTH} characters.</span>

        {error && (
          <p className="error-text" role="alert" data-testid="signup-error">
            {error}
          </p>
        )}

        <button type="submit" className="button primary" data-testid="signup-submit" disabled={submitting}>
          {submitting ? 'Creating account…' : 'Create account'}
        </button>
        <p className="muted form-switch">
          Already have an account?{' '}
          <Link href="/login" data-testid="login-link">
            Log in
          </Link>
        </p>
      </form>
    </main>
  );
}
