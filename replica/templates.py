"""Page skeletons copied from the reference pages in /work/shared/portal/.

Kept byte-for-byte where the reference is fixed (whitespace included), so a
selector that works on the reference works on the replica. Filled with
str.format; literal braces are doubled.
"""

DOCTYPE = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\n'
)
META_CHARSET = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312" />\n'
STYLESHEET = '<link href="/templets/default/style/dedecms.css" rel="stylesheet" type="text/css" />\n'

HEADER = """<div class="header">
  <div class="top w960 center"><a href="/">中国电源产业网</a> | <a href="/m/">手机版</a> | <a href="/member/login.php">会员登录</a></div>
  <div class="nav"><ul>
    {nav_first}
    {nav_second}
  </ul></div>
</div>
"""
NAV_ITEM = '<li><a href="{href}">{name}</a></li>'
NAV_ITEM_CURRENT = '<li class="hover"><a href="{href}">{name}</a></li>'

FOOTER = """<div class="footer w960 center mt1 clear">
  <p>中国电源产业网网友交流群:2223934、7921477、9640496、11647415</p>
  <p>Copyright &copy; 中国电源产业网 版权所有</p>
</div>
</body>
</html>
"""

ARTICLE = DOCTYPE + """<head>
""" + META_CHARSET + """<title>{title}_{channel_name}_中国电源产业网</title>
<meta name="keywords" content="{keywords}" />
<meta name="description" content="{description}" />
<link rel="canonical" href="{canonical}" />
""" + STYLESHEET + """<script language="javascript" type="text/javascript" src="/include/dedeajax2.js"></script>
</head>
<body class="articleview">
{header}<div class="w960 center clear mt1">
<div class="pleft">
  <div class="place"><strong>当前位置:</strong> <a href="/">主页</a> &gt; <a href="{channel_root}">{channel_name}</a> &gt; 正文</div>
  <div class="viewbox">
    <div class="title"><h2>{title}</h2></div>
    <div class="info"><span class="time">{time}</span>&nbsp;<span class="site">中国电源产业网</span>&nbsp;<small>点击:</small><script src="/plus/count.php?view=yes&amp;aid={aid}&amp;mid=1" type="text/javascript" language="javascript"></script>&nbsp;次</div>
    <div class="intro"><strong>导语:</strong>{lede}</div>
{content}    <div class="editor">编辑:{editor}</div>
    <div class="source">来源:{source}</div>
    <div class="tags">标签:{tags}</div>
    <div class="share"><span>分享到:</span><a class="bds_weixin" href="#">微信</a><a class="bds_tsina" href="#">新浪微博</a><script>window._bd_share_config={{}};</script></div>
    <div class="boxoff"><strong>------分隔线----------------------------</strong></div>
    <div class="handle"><div class="context"><ul>
      <li>上一篇:{prev}</li>
      <li>下一篇:{next}</li>
    </ul></div></div>
  </div>
  <div class="related">
    <dl class="tbox"><dt><strong>相关信息</strong><span class="more"><a href="{channel_root}">MORE &gt;&gt;</a></span></dt>
    <dd><ul class="d1 ico3">
{related}    </ul></dd></dl>
  </div>
</div>
</div>
""" + FOOTER

CONTENT = """    <div class="content" id="article-content">
<!-- content begin -->
{paragraphs}<!-- content end -->
    </div>
"""
PARAGRAPH = "<p>\u3000\u3000{text}</p>\n"
TAG_LINK = '<a href="/tags.php?/{tag}/">{tag}</a>'
CONTEXT_LINK = '<a href="{href}">{title}</a>'
NO_CONTEXT = "没有了"
RELATED_ITEM = ('    <li><span class="dot">-</span><a href="{href}" target="_blank"><h4>{title}</h4></a>'
                '<p>{lede}</p></li>\n')

LIST = DOCTYPE + """<head>
""" + META_CHARSET + """<title>{channel_name}_中国电源产业网</title>
""" + STYLESHEET + """</head>
<body class="articlelist">
{header}<div class="w960 center clear mt1">
<div class="pleft">
  <div class="place"><strong>当前位置:</strong> <a href="/">主页</a> &gt; <a href="{channel_root}">{channel_name}</a> &gt;</div>
  <div class="listbox">
<ul class="e2">
{items}</ul>
  </div>
  <div class="dede_pages"><ul class="pagelist">
    <li><span class="pageinfo">共 <strong>{pages}</strong>页<strong>{total}</strong>条</span></li>
{pager}  </ul></div>
</div>
</div>
""" + FOOTER

LIST_ITEM = ('<li><a href="{href}" class="title" target="_blank">{title}</a><span class="info">'
             '<small>日期:</small>{date}</span><p class="intro">{lede}</p></li>\n')
PAGER_LINK = '<li><a href="{href}">{label}</a></li>'
PAGER_DEAD = "<li><a>{label}</a></li>"
PAGER_CURRENT = '<li class="thisclass">{page}</li>'

HOME = DOCTYPE + """<head>
""" + META_CHARSET + """<title>中国电源产业网</title>
""" + STYLESHEET + """</head>
<body class="index">
{header}<div class="w960 center clear mt1">
<div class="pleft">
  <div class="channels"><ul>
{channels}  </ul></div>
</div>
</div>
""" + FOOTER
HOME_CHANNEL = '    <li><a href="{href}">{name}</a></li>\n'

NOT_FOUND = DOCTYPE + """<head>
""" + META_CHARSET + """<title>404-对不起!您访问的页面不存在</title>
</head>
<body>
<div class="error"><h2>对不起!您访问的页面不存在或已被删除</h2><p><a href="/">返回首页</a></p></div>
</body>
</html>
"""

ROBOTS = "User-agent: *\nDisallow: /member/\n"
