#!/usr/bin/env bash
# The deploy path, checked offline: cfn-lint, sam validate --lint, sam build, and make deploy-web
# against a local S3 and CloudFront (moto_server) with the real AWS CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

pip_install() { python3 -m pip install -q --disable-pip-version-check "$@"; }
command -v cfn-lint >/dev/null || pip_install cfn-lint
command -v aws >/dev/null || pip_install awscli
command -v moto_server >/dev/null || pip_install 'moto[server]'

echo "--- cfn-lint, sam validate --lint"
cfn-lint template.yaml
bash .ci/sam.sh validate --lint -t template.yaml

echo "--- sam build"
rm -rf .aws-sam/build
bash .ci/sam.sh build >/dev/null
# Every AWS::Serverless::Function of the template, read from it (sam build
# builds those with a Condition too), so that a new function cannot be left out.
fns=$(awk '/^  [A-Za-z0-9]+:$/ {id = substr($1, 1, length($1) - 1)} /^    Type: AWS::Serverless::Function$/ {print id}' template.yaml)
[ -n "$fns" ] || { echo "found no AWS::Serverless::Function in template.yaml" >&2; exit 1; }
for fn in $fns; do
  b=.aws-sam/build/$fn/bootstrap
  [ -f "$b" ] || { echo "sam build made no $b" >&2; exit 1; }
  # ELF, e_machine 0xB7 = AArch64
  [ "$(od -An -tx1 -j18 -N2 "$b" | tr -d ' ')" = "b700" ] || { echo "$b is not an arm64 binary" >&2; exit 1; }
  echo "$b: arm64, $(wc -c < "$b") bytes"
done

echo "--- make deploy-web against moto_server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >/tmp/moto-$port.log 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
for _ in $(seq 50); do curl -s "$AWS_ENDPOINT_URL" >/dev/null && break; sleep 0.2; done

bucket=chat-web-test
aws s3 mb "s3://$bucket" >/dev/null
aws s3 cp - "s3://$bucket/stale.html" <<<"left over from an old deploy" >/dev/null
dist=$(aws cloudfront create-distribution --origin-domain-name "$bucket.s3.amazonaws.com" \
  --default-root-object index.html --query Distribution.Id --output text)
url="wss://abc123.execute-api.us-east-1.amazonaws.com/prod"

signin=https://chat-0f1e.auth.us-east-1.amazoncognito.com
WEBSOCKET_URL="$url" WEB_BUCKET="$bucket" DISTRIBUTION_ID="$dist" SIGNIN_AUTHORIZE_URL="$signin/oauth2/authorize" \
  SIGNIN_TOKEN_URL="$signin/oauth2/token" SIGNIN_CLIENT_ID=abc123client SIGNIN_LOGOUT_URL="$signin/logout" make --no-print-directory deploy-web

fail() { echo "deploy-web check: $*" >&2; exit 1; }
listing=$(aws s3 ls "s3://$bucket/")
for f in index.html app.js client.js render.js rules.js style.css favicon.svg config.js; do
  grep -q " $f\$" <<<"$listing" || fail "the bucket lacks $f"
done
grep -q "stale.html" <<<"$listing" && fail "a file no longer in web/ was left in the bucket"
config=$(aws s3 cp "s3://$bucket/config.js" -)
grep -qF "websocketUrl: \"$url\"" <<<"$config" || fail "config.js does not point at $url: $config"
grep -qF "tokenUrl: \"$signin/oauth2/token\", clientId: \"abc123client\"" <<<"$config" || fail "config.js does not sign in at $signin: $config"
type=$(aws s3api head-object --bucket "$bucket" --key app.js --query ContentType --output text)
[[ "$type" == *javascript* ]] || fail "app.js is served as $type; module scripts need a JavaScript type"
n=$(aws cloudfront list-invalidations --distribution-id "$dist" --query 'length(InvalidationList.Items)' --output text)
[ "$n" = 1 ] || fail "expected one CloudFront invalidation, found $n"
WEBSOCKET_URL='javascript:alert(1)' WEB_BUCKET="$bucket" DISTRIBUTION_ID= bash .ci/deploy-web.sh 2>/dev/null && fail "a non-WebSocket URL was accepted"
WEBSOCKET_URL="$url" WEB_BUCKET="$bucket" DISTRIBUTION_ID= SIGNIN_AUTHORIZE_URL='javascript:alert(1)' SIGNIN_TOKEN_URL="$signin/oauth2/token" \
  SIGNIN_CLIENT_ID=abc SIGNIN_LOGOUT_URL= bash .ci/deploy-web.sh 2>/dev/null && fail "a non-https sign-in URL was accepted"
echo "deploy-web: bucket holds the page, config.js points at $url, CloudFront invalidated"
