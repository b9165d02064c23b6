import SignupPage from './SignupPage';

export const metadata = {
  title: 'Sign up · My Jobs',
};

export default function Page() {
  return <SignupPage />;
}
