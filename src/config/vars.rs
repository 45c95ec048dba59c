//! The environment as one tier's settings see it: each variable's value, or its default, parsed in its row's form.

use std::time::Duration;

use super::form::Value;
use super::{settings_for, Form, Setting, SETTINGS};
use crate::error::Error;
use crate::role::Role;

/// The environment as one tier's settings see it: each variable's value, or
/// its default, parsed in the form its [`SETTINGS`] row gives.
pub struct Vars<'a> {
    pub(super) role: Role,
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    pub(super) fn setting(&self, name: &'static str) -> &'static Setting {
        match settings_for(self.role).find(|s| s.name == name) {
            Some(s) => s,
            None => unreachable!(
                "{name} is read by {} but not declared for it in SETTINGS",
                self.role
            ),
        }
    }

    /// Whether this tier reads `name`.
    pub(super) fn reads(&self, name: &str) -> bool {
        settings_for(self.role).any(|s| s.name == name)
    }

    /// The value of `name`, or of its default; `None` if neither is set.
    pub(super) fn value(&self, name: &'static str) -> Result<Option<Value>, Error> {
        let setting = self.setting(name);
        let text = (self.lookup)(name)
            .or_else(|| (!setting.default.is_empty()).then(|| setting.default.to_string()));
        match text {
            None => Ok(None),
            Some(text) => setting
                .form
                .parse(&text)
                .map(Some)
                .map_err(|expected| Error::config(name, &text, expected)),
        }
    }

    /// The value of `name`, which must be set.
    pub(super) fn required(&self, name: &'static str) -> Result<Value, Error> {
        self.value(name)?.ok_or_else(|| Error::Config {
            name,
            value: None,
            expected: self.setting(name).form.expected(),
        })
    }

    pub(super) fn duration(&self, name: &'static str) -> Result<Duration, Error> {
        match self.required(name)? {
            Value::Duration(d) => Ok(d),
            other => self.mismatch(name, Some(other)),
        }
    }

    pub(super) fn number(&self, name: &'static str) -> Result<u64, Error> {
        match self.required(name)? {
            Value::Number(n) => Ok(n),
            other => self.mismatch(name, Some(other)),
        }
    }

    pub(super) fn number_opt(&self, name: &'static str) -> Result<Option<u64>, Error> {
        match self.value(name)? {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n)),
            other => self.mismatch(name, other),
        }
    }

    pub(super) fn word(&self, name: &'static str) -> Result<&'static str, Error> {
        match self.required(name)? {
            Value::Word(w) => Ok(w),
            other => self.mismatch(name, Some(other)),
        }
    }

    /// A setting read as another form than its row declares: a bug here, not an input.
    pub(super) fn mismatch(&self, name: &str, value: Option<Value>) -> ! {
        unreachable!(
            "{name} is declared as {:?} in SETTINGS but read as another form ({value:?})",
            self.setting_form(name)
        )
    }

    pub(super) fn setting_form(&self, name: &str) -> Option<Form> {
        SETTINGS.iter().find(|s| s.name == name).map(|s| s.form)
    }
}
