/*
id: sealtrail-config-ssh-password-auth
title: sshd accepts password logons (PasswordAuthentication yes)
level: medium
status: stable
kind: config
tactics: [initial-access, credential-access]
techniques: [T1110, T1078]
description: >
  The collected sshd configuration sets PasswordAuthentication yes as the global value sshd
  uses (the first value read: sshd_config top down, drop-ins at the Include that names them,
  nothing after a Match): passwords can be guessed over the network. Absent, OpenSSH's default
  is yes too, but an absent keyword is not reported (the distribution's build or a Match block
  may differ); the evidence is the line that sets it.
false_positives:
  - hosts reachable only from a trusted network, or protected by fail2ban or MFA through PAM
author: sealtrail
*/
SELECT NULL::VARCHAR AS event_uid, NULL::TIMESTAMPTZ AS ts, host, NULL::VARCHAR AS user_name,
       NULL::VARCHAR AS src_ip, NULL::VARCHAR AS group_key, bundle_id, member_path,
       line_no::BIGINT AS line_no
FROM sshd_effective
WHERE key = 'passwordauthentication' AND lower(value) = 'yes'
