// Package identity is who people are to carefront: accounts, passwords
// (argon2id), authenticator apps, passkeys, recovery codes, lockout and
// step-up. It decides whether someone proved who they are; what they may
// then see is the access package's decision.
package identity
