// Package auth verifies the JSON Web Tokens of an OpenID Connect issuer
// (Amazon Cognito or any other) for the $connect authorizer: the signature
// against the issuer's published keys (JWKS, fetched once, cached, fetched
// again for a key it has not seen but at most once a minute), the issuer,
// the audience or client_id, the time window with a small leeway, and
// Cognito's token_use. It yields who the token is for: the subject and a
// display name from the first claim that has one.
//
// It uses github.com/coreos/go-oidc for the token checks and
// github.com/go-jose/go-jose for the keys; it knows nothing of API Gateway.
package auth
