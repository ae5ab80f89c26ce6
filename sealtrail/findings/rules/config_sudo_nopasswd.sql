/*
id: sealtrail-config-sudo-nopasswd
title: sudoers grants commands without a password (NOPASSWD)
level: medium
status: stable
kind: config
tactics: [privilege-escalation]
techniques: [T1548.003]
description: >
  A user specification in the collected sudoers or sudoers.d files with the NOPASSWD tag: whoever
  holds that account (a stolen password, a key, a web shell) runs those commands as the target
  user without knowing its password. One finding per user list; the evidence is each such line.
  Aliases are not expanded; Defaults !authenticate is not looked at.
false_positives:
  - service accounts with a narrow, reviewed command list (read the line)
author: sealtrail
*/
SELECT NULL::VARCHAR AS event_uid, NULL::TIMESTAMPTZ AS ts, host, key AS user_name,
       NULL::VARCHAR AS src_ip, NULL::VARCHAR AS group_key, bundle_id, member_path,
       line_no::BIGINT AS line_no
FROM config_entries
WHERE file_kind IN ('sudoers', 'sudoers.d') AND regexp_matches(value, '\bNOPASSWD\s*:')
