package audit

// ChainHashForTest lets the tamper tests act as an attacker who knows the
// chain's construction.
var ChainHashForTest = chainHash

// HeadLockID is the PostgreSQL advisory lock of the chain head.
const HeadLockID = int64(headLockID)
