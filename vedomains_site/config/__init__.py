"""The VEDOMAINS_* settings, one module per subsystem, read from the environment.

`vedomains_site.settings` takes every upper-case name from these modules, so
`django.conf.settings.VEDOMAINS_X` (and `override_settings`, the `settings` fixture) work
as for any Django setting. The rules every module follows:

- the attribute is named as its environment variable;
- a duration is a number of seconds, and its name ends in `_SECONDS` (code that wants a
  `timedelta` builds it where it uses the value);
- a value that cannot be parsed stops start-up here with the variable's name
  (`environment.env`); every other check of a value is a system check
  (`domains.system_checks`, `domains.cdn_checks`, `veai.system_checks`);
- a knob no operator should turn is a constant in the module that uses it, not a setting.

docs/settings.md lists each setting with its group, type, default and whether an operator
should ever set it.
"""
