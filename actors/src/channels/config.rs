//! `channels.<name>` in the config file, resolved into one [`AccountConfig`] per account:
//! the channel's own keys, overridden by `accounts.<accountId>`'s. Without `accounts`
//! the channel has one account, `default`.
//!
//! ```json5
//! channels: {
//!   telegram: {
//!     botToken: "123:abc",            // or env TELEGRAM_BOT_TOKEN
//!     dmPolicy: "pairing",            // pairing | allowlist | open | disabled
//!     allowFrom: ["4242"],            // sender ids (allowlist, and pre-approved for pairing)
//!     groupPolicy: "allowlist",       // open | allowlist | disabled
//!     groups: { "*": { requireMention: true } },  // group ids, "*" for any
//!   },
//! }
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Who may talk to the agent in direct messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmPolicy {
    /// Unknown senders get a one-time code; the owner approves it (`pincer pairing approve`).
    Pairing,
    /// Only `allowFrom`.
    Allowlist,
    /// Anyone.
    Open,
    /// Nobody.
    Disabled,
}

/// Which groups the agent answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicy {
    /// Any group.
    Open,
    /// The groups listed in `groups` (or all with `"*"`).
    Allowlist,
    /// None.
    Disabled,
}

/// One entry of `groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Answer only when mentioned (or replied to). Default true.
    pub require_mention: bool,
    pub enabled: bool,
    /// Senders allowed in this group (empty: everyone in it).
    pub allow_from: Vec<String>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            require_mention: true,
            enabled: true,
            allow_from: Vec::new(),
        }
    }
}

/// One channel account, with its channel's settings folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountConfig {
    pub channel: String,
    pub account: String,
    pub enabled: bool,
    pub dm_policy: DmPolicy,
    pub allow_from: Vec<String>,
    pub group_policy: GroupPolicy,
    pub groups: BTreeMap<String, GroupConfig>,
    /// Everything else (credentials, apiBaseUrl, platform options), merged.
    pub raw: Map<String, Value>,
}

impl AccountConfig {
    pub fn key(&self) -> String {
        super::types::account_key(&self.channel, &self.account)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.raw
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.raw.get(name).and_then(Value::as_bool)
    }

    pub fn u64(&self, name: &str) -> Option<u64> {
        self.raw.get(name).and_then(Value::as_u64)
    }

    /// A secret from the config, else from the environment (`env`); never logged.
    pub fn secret(&self, name: &str, env: &str) -> Option<String> {
        self.str(name)
            .map(str::to_owned)
            .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
    }

    /// The group's settings: its own entry, else `"*"`'s, else none (not listed).
    pub fn group(&self, id: &str) -> Option<&GroupConfig> {
        self.groups.get(id).or_else(|| self.groups.get("*"))
    }
}

/// Keys that belong to the channel, not to one account, and are not copied into accounts.
const CHANNEL_ONLY: &[&str] = &["accounts"];

/// Every account of every channel in `channels` (in name order). Errors name the key.
pub fn accounts(channels: Option<&Value>) -> Result<Vec<AccountConfig>, String> {
    let Some(channels) = channels else {
        return Ok(Vec::new());
    };
    let Some(channels) = channels.as_object() else {
        return Err("channels must be an object of channel names".into());
    };
    let mut out = Vec::new();
    let mut names: Vec<&String> = channels.keys().collect();
    names.sort();
    for name in names {
        let Some(base) = channels[name].as_object() else {
            return Err(format!("channels.{name} must be an object"));
        };
        let mut shared = base.clone();
        for k in CHANNEL_ONLY {
            shared.remove(*k);
        }
        match base.get("accounts") {
            None => out.push(resolve(name, "default", shared)?),
            Some(Value::Object(accounts)) => {
                for (id, over) in accounts {
                    let Some(over) = over.as_object() else {
                        return Err(format!("channels.{name}.accounts.{id} must be an object"));
                    };
                    let mut merged = shared.clone();
                    merged.extend(over.clone());
                    out.push(resolve(name, id, merged)?);
                }
            }
            Some(_) => return Err(format!("channels.{name}.accounts must be an object")),
        }
    }
    Ok(out)
}

fn resolve(channel: &str, account: &str, raw: Map<String, Value>) -> Result<AccountConfig, String> {
    let at = |k: &str| {
        if account == "default" {
            format!("channels.{channel}.{k}")
        } else {
            format!("channels.{channel}.accounts.{account}.{k}")
        }
    };
    let dm_policy = match raw
        .get("dmPolicy")
        .and_then(Value::as_str)
        .unwrap_or("pairing")
    {
        "pairing" => DmPolicy::Pairing,
        "allowlist" => DmPolicy::Allowlist,
        "open" => DmPolicy::Open,
        "disabled" => DmPolicy::Disabled,
        other => {
            return Err(format!(
                "{} is {other:?}; use pairing, allowlist, open or disabled",
                at("dmPolicy")
            ));
        }
    };
    let group_policy = match raw
        .get("groupPolicy")
        .and_then(Value::as_str)
        .unwrap_or("allowlist")
    {
        "open" => GroupPolicy::Open,
        "allowlist" => GroupPolicy::Allowlist,
        "disabled" => GroupPolicy::Disabled,
        other => {
            return Err(format!(
                "{} is {other:?}; use open, allowlist or disabled",
                at("groupPolicy")
            ));
        }
    };
    let allow_from = ids(raw.get("allowFrom"), &at("allowFrom"))?;
    let mut groups = BTreeMap::new();
    match raw.get("groups") {
        None | Some(Value::Null) => {}
        // The short form: a list of group ids.
        Some(Value::Array(list)) => {
            for id in ids(Some(&Value::Array(list.clone())), &at("groups"))? {
                groups.insert(id, GroupConfig::default());
            }
        }
        Some(Value::Object(map)) => {
            for (id, g) in map {
                let g = g.as_object().cloned().unwrap_or_default();
                groups.insert(
                    id.clone(),
                    GroupConfig {
                        require_mention: g
                            .get("requireMention")
                            .and_then(Value::as_bool)
                            .unwrap_or(true),
                        enabled: g.get("enabled").and_then(Value::as_bool).unwrap_or(true),
                        allow_from: ids(
                            g.get("allowFrom"),
                            &at(&format!("groups.{id}.allowFrom")),
                        )?,
                    },
                );
            }
        }
        Some(_) => {
            return Err(format!(
                "{} must be an object or a list of ids",
                at("groups")
            ));
        }
    }
    Ok(AccountConfig {
        channel: channel.to_owned(),
        account: account.to_owned(),
        enabled: raw.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        dm_policy,
        allow_from,
        group_policy,
        groups,
        raw,
    })
}

/// A list of ids; numbers are accepted (Telegram ids are often written as numbers).
fn ids(v: Option<&Value>, at: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.trim().to_owned()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(format!("{at} must list ids (strings or numbers)")),
            })
            .collect(),
        Some(_) => Err(format!("{at} must be a list of ids")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_default_account_or_one_per_accounts_entry_with_overrides() {
        let c = json!({
            "telegram": {"botToken": "t", "allowFrom": [42, "43"], "groups": {"*": {"requireMention": false}}},
            "slack": {"signingSecret": "s", "dmPolicy": "open", "accounts": {
                "work": {"botToken": "w"},
                "home": {"botToken": "h", "dmPolicy": "disabled", "enabled": false}
            }}
        });
        let a = accounts(Some(&c)).unwrap();
        let keys: Vec<String> = a.iter().map(AccountConfig::key).collect();
        assert_eq!(keys, ["slack:home", "slack:work", "telegram:default"]);
        assert_eq!(a[0].dm_policy, DmPolicy::Disabled);
        assert!(!a[0].enabled);
        assert_eq!(a[1].dm_policy, DmPolicy::Open);
        assert_eq!(a[1].str("signingSecret"), Some("s"));
        assert_eq!(a[1].str("botToken"), Some("w"));
        assert!(!a[1].raw.contains_key("accounts"));
        let tg = &a[2];
        assert_eq!(tg.dm_policy, DmPolicy::Pairing);
        assert_eq!(tg.group_policy, GroupPolicy::Allowlist);
        assert_eq!(tg.allow_from, ["42", "43"]);
        assert!(!tg.group("-100").unwrap().require_mention);
    }

    #[test]
    fn wrong_values_name_their_key() {
        let e = accounts(Some(&json!({"telegram": {"dmPolicy": "friends"}}))).unwrap_err();
        assert!(
            e.contains("channels.telegram.dmPolicy") && e.contains("pairing"),
            "{e}"
        );
        let e = accounts(Some(
            &json!({"slack": {"accounts": {"w": {"allowFrom": "x"}}}}),
        ))
        .unwrap_err();
        assert!(e.contains("channels.slack.accounts.w.allowFrom"), "{e}");
        assert!(accounts(Some(&json!({"telegram": 1}))).is_err());
    }
}
