// SignIn signs the user in with an OpenID Connect provider (a Cognito user
// pool's hosted UI in AWS, the local provider of `make run AUTH=jwt`): the
// authorization-code flow with PKCE, so the page holds no secret. The ID
// token is what the chat's $connect authorizer checks; it is refreshed a
// minute before it expires, and before each reconnection.
//
// Tokens live in sessionStorage: each tab signs in on its own (two tabs can
// be two people) and nothing outlives the browser session.
//
// config: {authorizeUrl, tokenUrl, clientId, logoutUrl?, scope?}

import { tokenExpiry } from "./client.js";

const STORE = "chat.signin"; // {idToken, refreshToken, expiresAt}
const PENDING = "chat.signin.pending"; // {state, verifier, room} while at the provider
const REFRESH_BEFORE_MS = 60000;

export class SignIn {
  constructor(config) {
    this.config = config;
  }

  get redirectUri() {
    return location.origin + location.pathname;
  }

  /** Whether tokens are held (they may need a refresh). */
  get signedIn() {
    return this.load() !== null;
  }

  /** Goes to the provider's sign-in page; it comes back to this page with ?code=…&state=…. invite: an invite link's token for room, kept for the way back. */
  async begin(room, invite = "") {
    const verifier = randomText(48);
    const state = randomText(24);
    sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, room, invite }));
    const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
    const q = new URLSearchParams({
      response_type: "code",
      client_id: this.config.clientId,
      redirect_uri: this.redirectUri,
      scope: this.config.scope || "openid profile email",
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    location.assign(`${this.config.authorizeUrl}?${q}`);
  }

  /**
   * Finishes a sign-in if this page is the provider's redirect: exchanges the
   * code for tokens and returns {room, invite} (the room the user was joining, and its invite link's token);
   * null if it is not a redirect. Throws with a message the user can read.
   */
  async complete() {
    const q = new URLSearchParams(location.search);
    if (!q.has("code") && !q.has("error")) return null;
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    history.replaceState(null, "", location.pathname + (pending?.room ? `?room=${encodeURIComponent(pending.room)}` : ""));
    if (q.has("error")) throw new Error(`Sign-in failed: ${q.get("error_description") || q.get("error")}`);
    if (!pending || q.get("state") !== pending.state) throw new Error("Sign-in failed: this page did not start it. Try again.");
    await this.request({
      grant_type: "authorization_code",
      code: q.get("code"),
      redirect_uri: this.redirectUri,
      code_verifier: pending.verifier,
    });
    return { room: pending.room, invite: pending.invite || "" };
  }

  /** A valid ID token, refreshed if it is about to expire; null if the user must sign in again. */
  async token() {
    const held = this.load();
    if (!held) return null;
    if (held.expiresAt - Date.now() > REFRESH_BEFORE_MS) return held.idToken;
    if (!held.refreshToken) {
      this.forget();
      return null;
    }
    try {
      await this.request({ grant_type: "refresh_token", refresh_token: held.refreshToken }, held.refreshToken);
    } catch {
      this.forget();
      return null;
    }
    return this.load()?.idToken ?? null;
  }

  /** Forgets the tokens and, if the provider has a logout page, signs out there too. */
  signOut() {
    this.forget();
    if (this.config.logoutUrl) {
      const q = new URLSearchParams({ client_id: this.config.clientId, logout_uri: this.redirectUri });
      location.assign(`${this.config.logoutUrl}?${q}`);
    }
  }

  forget() {
    sessionStorage.removeItem(STORE);
  }

  load() {
    try {
      const held = JSON.parse(sessionStorage.getItem(STORE) || "null");
      return held?.idToken ? held : null;
    } catch {
      return null;
    }
  }

  /** Calls the token endpoint and keeps what it returns (a refresh keeps the old refresh token unless a new one comes). */
  async request(params, refreshToken) {
    const resp = await fetch(this.config.tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: this.config.clientId, ...params }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok || !body.id_token) {
      throw new Error(`Sign-in failed: ${body.error_description || body.error || `the provider answered ${resp.status}`}`);
    }
    sessionStorage.setItem(STORE, JSON.stringify({
      idToken: body.id_token,
      refreshToken: body.refresh_token || refreshToken || "",
      expiresAt: tokenExpiry(body.id_token),
    }));
  }
}

function randomText(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
