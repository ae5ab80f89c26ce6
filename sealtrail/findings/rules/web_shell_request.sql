/*
id: sealtrail-web-shell-request
title: Request to a likely web shell
level: critical
status: stable
tactics: [persistence, execution]
techniques: [T1505.003]
description: >
  A request to a script (.php, .jsp, .jspx, .asp, .aspx, .cgi) passing a command parameter
  (cmd=, exec=, command=, execute=, shell=, c= with a shell command), or to a script named
  like a known web shell (c99, r57, b374k, wso, shell.php, cmd.jsp). One finding per address
  and script.
false_positives:
  - applications with a parameter named cmd or exec
author: sealtrail
sources: [web_access]
*/
SELECT event_uid, ts, host, NULL::VARCHAR AS user_name, src_ip, path AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'http_request'
  AND ((regexp_matches(lower(path), '\.(php\d?|phtml|jspx?|aspx?|cgi)$')
        AND regexp_matches(lower(coalesce(attributes->>'$.query', '')),
            '(^|&)(cmd|exec|command|execute|shell|c)=(id|whoami|uname|ls|cat|wget|curl|bash|sh|powershell|cmd)'))
       OR regexp_matches(lower(path), '/(c99|r57|b374k|wso|shell|cmd|webshell|alfa)\w*\.(php\d?|jspx?|aspx?)$'))
