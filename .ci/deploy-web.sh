#!/usr/bin/env bash
# make deploy-web: publishes web/ to the stack's bucket with a config.js that
# points the page at the stack's WebSocket API, then invalidates CloudFront.
#
# Values come from the stack's outputs unless given in the environment:
#   STACK            stack name (default: stack_name in samconfig.toml)
#   WEBSOCKET_URL    wss:// URL the page connects to      (output WebSocketURL)
#   WEB_BUCKET       bucket to upload to                  (output WebBucketName)
#   DISTRIBUTION_ID  CloudFront distribution to invalidate (output DistributionId; empty: none)
#   SIGNIN_AUTHORIZE_URL, SIGNIN_TOKEN_URL, SIGNIN_CLIENT_ID, SIGNIN_LOGOUT_URL
#                    where the page signs in (outputs SignIn*, present with the
#                    stack's own Cognito pool; empty: guests, no sign-in)
# AWS_ENDPOINT_URL points the AWS CLI at another endpoint (the tests' local S3).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v aws >/dev/null || { echo "deploy-web needs the AWS CLI (pip install awscli)" >&2; exit 1; }
stack="${STACK:-$(sed -n 's/^stack_name *= *"\(.*\)"/\1/p' samconfig.toml | head -n 1)}"
output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
url="${WEBSOCKET_URL:-$(output WebSocketURL)}"
bucket="${WEB_BUCKET:-$(output WebBucketName)}"
dist="${DISTRIBUTION_ID-$(output DistributionId)}"

if ! [[ "$url" =~ ^wss?://[A-Za-z0-9.:/_-]+$ ]]; then
  echo "deploy-web: '$url' is not a WebSocket URL (wss://…)" >&2
  exit 1
fi

# Sign-in: the stack's Cognito hosted UI, or an issuer of one's own.
authorize="${SIGNIN_AUTHORIZE_URL-$(output SignInAuthorizeURL)}"
auth=""
if [ -n "$authorize" ] && [ "$authorize" != "None" ]; then
  token="${SIGNIN_TOKEN_URL-$(output SignInTokenURL)}"
  client="${SIGNIN_CLIENT_ID-$(output SignInClientId)}"
  logout="${SIGNIN_LOGOUT_URL-$(output SignInLogoutURL)}"
  [ "$logout" = "None" ] && logout=""
  for u in "$authorize" "$token" "$logout"; do
    if [ -n "$u" ] && ! [[ "$u" =~ ^https://[A-Za-z0-9.:/_-]+$ ]]; then
      echo "deploy-web: sign-in URL '$u' is not an https:// URL" >&2
      exit 1
    fi
  done
  if [ -z "$token" ] || ! [[ "$client" =~ ^[A-Za-z0-9_-]+$ ]]; then
    echo "deploy-web: sign-in needs a token URL and a client id (got '$token', '$client')" >&2
    exit 1
  fi
  auth=$(printf ', auth: { authorizeUrl: "%s", tokenUrl: "%s", clientId: "%s", logoutUrl: "%s" }' "$authorize" "$token" "$client" "$logout")
fi

staged=$(mktemp -d)
trap 'rm -rf "$staged"' EXIT
cp -R web/. "$staged/"
printf '// Written by make deploy-web.\nexport default { websocketUrl: "%s"%s };\n' "$url" "$auth" > "$staged/config.js"

# no-cache: browsers revalidate (cheap, ETag) so a new deploy shows at once.
aws s3 sync "$staged" "s3://$bucket" --delete --cache-control no-cache --only-show-errors
if [ -n "$dist" ] && [ "$dist" != "None" ]; then
  aws cloudfront create-invalidation --distribution-id "$dist" --paths '/*' --output text --query Invalidation.Id >/dev/null
fi
echo "published web/ to s3://$bucket; the page connects to $url${auth:+ and signs in at $authorize}"
