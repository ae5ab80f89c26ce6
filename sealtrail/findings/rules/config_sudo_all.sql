/*
id: sealtrail-config-sudo-all
title: sudoers gives a non-admin account every command as any user
level: medium
status: stable
kind: config
tactics: [privilege-escalation]
techniques: [T1548.003]
description: >
  A sudoers or sudoers.d user specification whose command list is ALL (e.g. ALL=(ALL) ALL,
  ALL=(ALL:ALL) NOPASSWD: ALL; no Runas list means root) for a user list other than the usual
  administrators: root, %sudo, %admin, %wheel and %root are not reported. Such a line makes the
  account as good as root. Aliases are not expanded. One finding per user list.
false_positives:
  - a named administrator given full rights by name instead of through an admin group
author: sealtrail
*/
SELECT NULL::VARCHAR AS event_uid, NULL::TIMESTAMPTZ AS ts, host, key AS user_name,
       NULL::VARCHAR AS src_ip, NULL::VARCHAR AS group_key, bundle_id, member_path,
       line_no::BIGINT AS line_no
FROM config_entries
WHERE file_kind IN ('sudoers', 'sudoers.d')
  AND key NOT IN ('defaults', 'include', 'includedir', 'user_alias', 'runas_alias',
                  'host_alias', 'cmnd_alias', 'cmd_alias',
                  'root', '%sudo', '%admin', '%wheel', '%root')
  AND regexp_matches(value, '=\s*(\([^)]*\)\s*)?([A-Z_]+\s*:\s*)*ALL\s*$')
