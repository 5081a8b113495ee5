// Package laki is LakiConnect's vocabulary: environments, RBAC scopes, the
// states of keys and signing secrets, the shapes of ids and secrets, the
// API's limits, and the records LakiConnect reports about its credentials.
//
// It is a leaf: it imports nothing of the project but internal/secret, so the
// engine, policies, config and inventory speak LakiConnect's words without
// importing the HTTP client (providers/lakiconnect), which is one way of
// talking to LakiConnect among others (the simulator, a fake).
package laki
