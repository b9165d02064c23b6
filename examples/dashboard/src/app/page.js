'use client';

import { useEffect } from 'react';
import { useRouter } from 'next/navigation';
import { useAuth } from '@/context/AuthContext';

export default function HomePage() {
  const { user, loading, sessionError } = useAuth();
  const router = useRouter();

  useEffect(() => {
    if (!loading) {
      // A failed session check (API down, 5xx) is not "signed out": the
      // dashboard shows the error and a Retry button.
      router.replace(user || sessionError ? '/dashboard' : '/login');
    }
  }, [user, loading, sessionError, router]);

  return <p className="page-message">Loading…</p>;
}
