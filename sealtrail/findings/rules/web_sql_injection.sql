/*
id: sealtrail-web-sql-injection
title: SQL injection attempt in a web request
level: high
status: stable
tactics: [initial-access]
techniques: [T1190]
description: >
  A request path or query holding SQL injection patterns (UNION SELECT, OR 1=1, sleep(),
  benchmark(), information_schema, xp_cmdshell, '--, ; DROP), URL-encoded or not. One finding
  per address; answers of 200 with large bodies are the ones that may have leaked data.
false_positives:
  - search boxes receiving SQL text from users (rare)
author: sealtrail
sources: [web_access]
*/
SELECT event_uid, ts, host, NULL::VARCHAR AS user_name, src_ip, NULL::VARCHAR AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'http_request'
  AND regexp_matches(replace(replace(replace(lower(coalesce(path, '') || '?'
        || coalesce(attributes->>'$.query', '')), '%20', ' '), '+', ' '), '%27', ''''),
      '(union(\s|/\*.*\*/)+(all\s+)?select|''\s*or\s+''?\d+''?\s*=\s*''?\d|\bor\s+1\s*=\s*1|sleep\s*\(\s*\d|benchmark\s*\(|information_schema|xp_cmdshell|''\s*--|;\s*drop\s+table|waitfor\s+delay)')
