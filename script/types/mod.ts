// Type definitions for Latchkey's TypeScript hooks.
//
// Latchkey maps `https://deno.land/x/authgear_deno_hook@v1.x.y/mod.ts` to this
// file, so the reference product's hooks compile as printed, with no network.
// Everything here is a type: importing it adds no code to a hook.

/** Who or what caused the event. */
export type TriggeredBy = "admin_api" | "user" | "system" | "portal";

export interface AuditContext {
  actor_kind: "admin" | "api_key" | "user" | "system";
  actor_id?: string;
  actor_name?: string;
}

/** The context every event carries. */
export interface EventContext {
  timestamp: number;
  user_id?: string;
  triggered_by: TriggeredBy;
  ip_address?: string;
  user_agent?: string;
  app_id: string;
  language: string;
  preferred_languages: string[];
  audit_context?: AuditContext;
}

export interface StandardAttributes {
  email?: string;
  email_verified?: boolean;
  phone_number?: string;
  phone_number_verified?: boolean;
  preferred_username?: string;
  updated_at?: number;
  [key: string]: unknown;
}

export interface User {
  id: string;
  created_at: string;
  updated_at: string;
  last_login_at?: string;
  is_disabled: boolean;
  can_reauthenticate: boolean;
  standard_attributes: StandardAttributes;
  custom_attributes?: Record<string, unknown>;
}

export interface Identity {
  id: string;
  type: "login_id";
  created_at: string;
  claims: Record<string, string>;
  login_id: { key: "email" | "phone" | "username"; type: "email" | "phone" | "username"; value: string };
}

interface BaseEvent<T extends string, P> {
  id: string;
  seq: number;
  type: T;
  payload: P;
  context: EventContext;
}

export interface UserPayload {
  user: User;
  identities?: Identity[];
}

// Blocking events: the hook answers with a HookResponse.
export type EventUserPreCreate = BaseEvent<"user.pre_create", UserPayload>;

// Non-blocking events: the return value is ignored.
export type EventUserCreated = BaseEvent<"user.created", UserPayload>;
export type EventUserAuthenticated = BaseEvent<"user.authenticated", UserPayload>;
export type EventUserDisabled = BaseEvent<"user.disabled", UserPayload>;
export type EventUserReenabled = BaseEvent<"user.reenabled", UserPayload>;
export type EventUserDeleted = BaseEvent<"user.deleted", UserPayload>;
export type EventUserPasswordChanged = BaseEvent<"user.password.changed", UserPayload>;
export type EventPasswordExpiredSet = BaseEvent<"password.expired.set", { user: User; expired: boolean }>;
export type EventUserLockoutCleared = BaseEvent<"user.lockout.cleared", { user: User }>;

export type BlockingEvent = EventUserPreCreate;
export type NonBlockingEvent =
  | EventUserCreated
  | EventUserAuthenticated
  | EventUserDisabled
  | EventUserReenabled
  | EventUserDeleted
  | EventUserPasswordChanged
  | EventPasswordExpiredSet
  | EventUserLockoutCleared;

/** Any event a hook can receive; switch on `type` to narrow it. */
export type HookEvent = BlockingEvent | NonBlockingEvent;

export interface HookResponseAllowed {
  is_allowed: true;
  mutations?: {
    user?: {
      standard_attributes?: Partial<StandardAttributes>;
      custom_attributes?: Record<string, unknown>;
    };
  };
}

export interface HookResponseDisallowed {
  is_allowed: false;
  title?: string;
  reason?: string;
}

/** What a blocking hook returns. */
export type HookResponse = HookResponseAllowed | HookResponseDisallowed;

/** What a custom SMS script receives: it sends the text itself with fetch. */
export interface CustomSMSGatewayPayload {
  to: string;
  body: string;
  app_id?: string;
  template_name?: string;
  language_tag?: string;
  template_variables?: Record<string, unknown>;
}

/** A custom SMS script may return this; a throw is a failed send. */
export interface CustomSMSGatewayResponse {
  code: "ok" | "invalid_phone_number" | "rate_limited" | "authentication_failed" | "delivery_rejected";
  provider_name?: string;
  provider_error_code?: string;
}
