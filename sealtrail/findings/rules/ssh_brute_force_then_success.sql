/*
id: sealtrail-ssh-brute-force-success
title: SSH logon succeeded from an address that was brute forcing
level: critical
status: stable
kind: correlation
tactics: [credential-access, initial-access]
techniques: [T1110.001, T1078]
description: >
  A successful SSH logon from an address that had ten or more failed SSH logons on the same
  host in the hour before: the guessing worked. One finding per account and address; the
  evidence is the success and the failures before it (view ssh_brute_force_logons).
false_positives:
  - a user who forgot a password and then remembered it, from one address, ten times
author: sealtrail
sources: [syslog, journald]
*/
SELECT event_uid, ts, host, "user" AS user_name, src_ip, NULL::VARCHAR AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM ssh_brute_force_logons
UNION ALL
SELECT DISTINCT f.event_uid, f.ts, f.host, h."user", f.src_ip, NULL, NULL, NULL, NULL
FROM ssh_brute_force_logons h JOIN events f ON f.event_type = 'logon_failure'
     AND f.process = 'sshd' AND f.host IS NOT DISTINCT FROM h.host AND f.src_ip = h.src_ip
     AND f.ts BETWEEN h.ts - INTERVAL 1 HOUR AND h.ts
