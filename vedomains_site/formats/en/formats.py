"""One date format everywhere in the admin: "2026-11-28 21:19" (24 h, no microseconds).

Django's own English formats ("Nov. 28, 2026, 9:19 p.m.") sat next to ISO timestamps from
the checks; staff compare times across pages, so they read the same way everywhere.
"""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
