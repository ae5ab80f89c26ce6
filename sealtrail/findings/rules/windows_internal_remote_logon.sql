/*
id: sealtrail-windows-internal-remote-logon
title: Network or RDP logon from an internal address
level: low
status: stable
tactics: [lateral-movement]
techniques: [T1021.001, T1021.002]
description: >
  Successful logons of type 3 (network: SMB, WMI, PsExec) or 10 (RDP) from a private
  (RFC 1918) address, by account and source: the paths an intruder moving inside can take.
  Machine accounts and anonymous logons are left out. Read it against the accounts and
  hosts known to be compromised.
false_positives:
  - administrators and management servers; file shares
author: sealtrail
needs: [[Security, 4624]]
*/
SELECT event_uid, ts, host, coalesce(target_user, "user") AS user_name, src_ip,
       'logon type ' || logon_type AS group_key, NULL::VARCHAR AS bundle_id,
       NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE channel = 'Security' AND event_id = 4624 AND logon_type IN (3, 10)
  AND regexp_matches(src_ip, '^(10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.)')
  AND NOT coalesce(target_user, "user", '') LIKE '%$'
  AND upper(coalesce(target_user, "user", '')) <> 'ANONYMOUS LOGON'
