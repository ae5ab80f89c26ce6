/*
id: sealtrail-config-ssh-root-login
title: sshd lets root log on with a password (PermitRootLogin yes)
level: high
status: stable
kind: config
tactics: [initial-access, privilege-escalation]
techniques: [T1078.003, T1110]
description: >
  The collected sshd configuration sets PermitRootLogin yes as the global value sshd uses (first
  value read, as for sealtrail-config-ssh-password-auth): root may log on with any method,
  password included. prohibit-password, without-password, forced-commands-only and no are not
  reported. Absent, OpenSSH's default (since 7.0) is prohibit-password: not a finding.
false_positives:
  - lab hosts without network exposure
author: sealtrail
*/
SELECT NULL::VARCHAR AS event_uid, NULL::TIMESTAMPTZ AS ts, host, 'root' AS user_name,
       NULL::VARCHAR AS src_ip, NULL::VARCHAR AS group_key, bundle_id, member_path,
       line_no::BIGINT AS line_no
FROM sshd_effective
WHERE key = 'permitrootlogin' AND lower(value) = 'yes'
