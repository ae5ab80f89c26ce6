/*
id: sealtrail-web-path-traversal
title: Path traversal attempt in a web request
level: high
status: stable
tactics: [initial-access]
techniques: [T1190]
description: >
  A request whose path or query climbs directories (../, ..\, encoded %2e%2e) or names
  system files (/etc/passwd, /etc/shadow, win.ini, /proc/self/environ). One finding per
  address; a 200 answer among the evidence is the one to read first.
false_positives:
  - applications that legitimately pass relative paths in parameters (rare)
author: sealtrail
sources: [web_access]
*/
SELECT event_uid, ts, host, NULL::VARCHAR AS user_name, src_ip, NULL::VARCHAR AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'http_request'
  AND regexp_matches(coalesce(path, '') || '?' || coalesce(attributes->>'$.query', ''),
      '(?i)(\.\./|\.\.\\|%2e%2e(%2f|%5c|/)|\.\.%2f|\.\.%5c|/etc/(passwd|shadow)|win\.ini|/proc/self/environ)')
