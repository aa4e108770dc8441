package audit

// ChainHashForTest lets the tamper tests act as an attacker who knows the
// chain's construction.
var ChainHashForTest = chainHash
