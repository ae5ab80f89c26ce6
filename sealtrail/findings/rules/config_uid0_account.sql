/*
id: sealtrail-config-uid0-account
title: Account other than root with UID 0 in /etc/passwd
level: critical
status: stable
kind: config
tactics: [privilege-escalation, persistence]
techniques: [T1078.003, T1136.001]
description: >
  The collected /etc/passwd holds an account other than root with UID 0: root's rights under
  another name, a classic backdoor. The evidence is its passwd line. See also
  sealtrail-account-uid0, which finds the command or log line that made such an account.
false_positives:
  - "toor-style rescue accounts some BSD-derived setups keep (rare on Linux)"
author: sealtrail
*/
SELECT NULL::VARCHAR AS event_uid, NULL::TIMESTAMPTZ AS ts, host, key AS user_name,
       NULL::VARCHAR AS src_ip, NULL::VARCHAR AS group_key, bundle_id, member_path,
       line_no::BIGINT AS line_no
FROM config_entries
WHERE file_kind = 'passwd' AND value = '0' AND key <> 'root'
