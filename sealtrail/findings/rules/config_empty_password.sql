/*
id: sealtrail-config-empty-password
title: Account with an empty password hash in /etc/shadow
level: high
status: stable
kind: config
tactics: [initial-access, credential-access]
techniques: [T1078.003]
description: >
  The collected /etc/shadow (collected only when asked for: --artifact UnixShadowFile) has an
  account whose password field is empty: it may log on without a password wherever PAM allows
  it (nullok) or sshd has PermitEmptyPasswords yes. The database holds only whether each hash
  is empty, locked or set, never the hash. Locked (! or *) accounts are not reported.
false_positives:
  - none known on a server; kiosk or live-media images
author: sealtrail
*/
SELECT NULL::VARCHAR AS event_uid, NULL::TIMESTAMPTZ AS ts, host, key AS user_name,
       NULL::VARCHAR AS src_ip, NULL::VARCHAR AS group_key, bundle_id, member_path,
       line_no::BIGINT AS line_no
FROM config_entries
WHERE file_kind = 'shadow' AND value = 'empty'
