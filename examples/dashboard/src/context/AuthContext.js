'use client';

import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import { useRouter } from 'next/navigation';
import { authService } from '@/lib/authService';

const AuthContext = createContext(null);

/**
 * Session state for the whole app.
 *
 * - `loading`: true until the first session check has an outcome.
 * - `user`: the signed-in user, or null.
 * - `sessionError`: set when the session check failed without an answer about
 *   the session (network error, 5xx, ...). Only a 401 means "signed out"; in
 *   every other failure we do not know, so pages must show the error and offer
 *   `retrySession()` instead of sending the user to the login page.
 * - `checking`: true while a session check (the first one or a retry) runs.
 */
export function AuthProvider({ children }) {
  const [user, setUser] = useState(null);
  const [loading, setLoading] = useState(true);
  const [checking, setChecking] = useState(true);
  const [sessionError, setSessionError] = useState(null);

  // Only the newest session check may update state; login, logout and
  // clearSession also bump it so an older check cannot undo them.
  const checkIdRef = useRef(0);

  const checkSession = useCallback(async () => {
    const checkId = ++checkIdRef.current;
    setChecking(true);
    // sessionError stays as it is until there is an answer: clearing it here
    // would look like "signed out" to the pages and send the user to /login.
    try {
      const currentUser = await authService.me(); // null on 401
      if (checkId !== checkIdRef.current) return;
      setUser(currentUser);
      setSessionError(null);
    } catch (err) {
      if (checkId !== checkIdRef.current) return;
      setSessionError(err instanceof Error ? err : new Error(String(err)));
    } finally {
      if (checkId === checkIdRef.current) {
        setChecking(false);
        setLoading(false);
      }
    }
  }, []);

  // Restore the session from the cookie on first load.
  useEffect(() => {
    checkSession();
    return () => {
      checkIdRef.current += 1; // ignore an answer that arrives after unmount
    };
  }, [checkSession]);

  // Settle the session with a known outcome, cancelling any check in flight.
  const settle = useCallback((nextUser) => {
    checkIdRef.current += 1;
    setUser(nextUser);
    setSessionError(null);
    setChecking(false);
    setLoading(false);
  }, []);

  const login = useCallback(
    async (email, password) => {
      const loggedInUser = await authService.login(email, password);
      settle(loggedInUser);
      return loggedInUser;
    },
    [settle],
  );

  const logout = useCallback(async () => {
    try {
      await authService.logout();
    } catch (err) {
      // The cookie is HttpOnly, so only the API can clear it. Forget the user
      // locally anyway; the next page load re-checks the session.
      console.warn('Logout request failed:', err.message);
    } finally {
      settle(null);
    }
  }, [settle]);

  // For callers that got a 401 from the API: the session is gone.
  const clearSession = useCallback(() => settle(null), [settle]);

  const value = useMemo(
    () => ({
      user,
      loading,
      checking,
      sessionError,
      retrySession: checkSession,
      login,
      logout,
      clearSession,
    }),
    [user, loading, checking, sessionError, checkSession, login, logout, clearSession],
  );

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth() {
  const context = useContext(AuthContext);
  if (!context) {
    throw new Error('useAuth must be used inside <AuthProvider>');
  }
  return context;
}

/** For the pages a signed-out visitor uses (log in, sign up): a session restored from the cookie
 * goes straight to the dashboard. */
export function useRedirectWhenSignedIn() {
  const { user, loading } = useAuth();
  const router = useRouter();
  useEffect(() => {
    if (!loading && user) {
      router.replace('/dashboard');
    }
  }, [user, loading, router]);
}
