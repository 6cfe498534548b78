"""Write the quality gate's pages in other common Chinese CMS layouts, and their expected fields.

    .venv/bin/python tests/files/quality/write_cms_pages.py

Each layout below is modelled on a family of sites the fallback extractor
must read when the portal's own profile no longer fits: PHPCMS, EmpireCMS
(帝国CMS), a WordPress theme, a government site on TRS WCM, a large news
portal, a WeChat official-account article, a Discuz! portal article and an
old table-layout static page with <br>-separated paragraphs. The text is
written for these pages; the markup around it (navigation, hot lists,
related items, share bars, comment boxes, footers with ICP numbers) is the
boilerplate such sites really carry. Expected fields are what a reader sees.
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

HERE = Path(__file__).parent

NAV = ("首页", "新闻中心", "政策法规", "企业动态", "技术前沿", "展会活动", "联系我们")
HOT = ("储能电站安全管理办法征求意见", "多地出台充电设施建设补贴政策", "光伏组件价格连续三周企稳",
       "功率半导体国产化率再创新高", "氢能产业链重点项目集中签约")


def nav(tag: str = "li") -> str:
    return "".join(f'<{tag}><a href="/{i}/">{n}</a></{tag}>' for i, n in enumerate(NAV))


def hot(tag: str = "li") -> str:
    return "".join(f'<{tag}><a href="/news/{9000 + i}.html">{t}</a></{tag}>' for i, t in enumerate(HOT))


ARTICLES = {
    "cms-phpcms.html": dict(
        charset="utf-8",
        title="国家能源局发布2025年一季度储能装机数据",
        site="新能源在线",
        published="2025-04-18T15:20:00+08:00",
        source="国家能源局", editor="周倩",
        paragraphs=[
            "4月18日,国家能源局召开新闻发布会,介绍2025年一季度能源形势和新型储能发展情况。",
            "截至3月底,全国已建成投运新型储能项目累计装机规模达到7376万千瓦,较去年底增长约7%。其中,锂离子电池储能占比超过97%,压缩空气、液流电池、飞轮储能等技术路线也有项目投运。",
            "从地区分布看,西北、华北地区装机规模居前,合计占全国的一半以上。新疆、内蒙古、山东、江苏等省区累计装机均超过500万千瓦。",
            "国家能源局有关负责同志表示,下一步将加强新型储能调度运用,提升储能利用水平,推动新型储能高质量发展。",
        ],
        template="""<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
<title>{title} - 行业新闻 - {site}</title>
<meta name="keywords" content="储能,装机,国家能源局" />
<meta name="description" content="{description}" />
<link href="/statics/css/reset.css" rel="stylesheet" type="text/css" />
<script type="text/javascript" src="/statics/js/jquery.min.js"></script>
</head><body>
<div class="header"><div class="logo"><a href="/"><img src="/statics/images/logo.png" alt="{site}" /></a></div>
<div class="nav"><ul>{nav}</ul></div></div>
<div class="main">
<div class="crumbs"><a href="/">首页</a><span> &gt; </span><a href="/news/">行业新闻</a> &gt; 正文</div>
<div class="col-left">
<div id="Article">
<h1>{title}<br /><span>{date_text}&nbsp;&nbsp;&nbsp;来源：{source}&nbsp;&nbsp;&nbsp;评论：<a href="#comment_iframe" id="comment">0</a> 点击：<span id="hits"></span></span></h1>
<div class="content">
{paragraphs}
</div>
<p style="margin-bottom:10px"><strong>责任编辑：{editor}</strong></p>
<div id="pages" class="text-c"></div>
<p class="f14"><strong>上一篇：</strong><a href="/news/2025/0417/101.html">光伏组件价格连续三周企稳</a><br />
<strong>下一篇：</strong><a href="/news/2025/0419/103.html">多地出台充电设施建设补贴政策</a></p>
</div>
<div class="box"><h5>相关阅读</h5><ul class="list">{hot}</ul></div>
<div class="box" id="comment_iframe"><h5>网友评论</h5><p>已有0条评论，<a href="/comment/">查看全部</a></p></div>
</div>
<div class="col-auto"><div class="box"><h5 class="title-2">点击排行</h5><ul class="content digg">{hot}</ul></div></div>
</div>
<div class="footer"><p>Copyright &copy; 2008-2025 {site} 版权所有 京ICP备08012345号-1</p><p>地址：北京市海淀区中关村大街1号 电话：010-12345678</p></div>
</body></html>
""",
        date_text="2025-04-18 15:20:00",
        paragraph="<p>　　{text}</p>",
    ),
    "cms-empire.html": dict(
        charset="gbk",
        title="江苏首个百兆瓦级构网型储能电站并网",
        site="中国储能资讯网",
        published="2025-03-06T09:12:00+08:00",
        source="江苏电力报", editor="李明",
        paragraphs=[
            "3月5日,江苏省首个百兆瓦级构网型储能电站在盐城正式并网运行,标志着构网型储能技术在省内实现规模化应用。",
            "该电站规划容量100兆瓦/200兆瓦时,采用构网型变流器,可在电网故障时为系统提供电压和频率支撑,提升新能源高比例接入地区的电网稳定性。",
            "项目负责人介绍,电站每年可消纳新能源电量约1.2亿千瓦时,相当于节约标准煤3.6万吨,减少二氧化碳排放约9.8万吨。",
        ],
        template="""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<meta http-equiv="Content-Type" content="text/html; charset=gbk" />
<title>{title}_{site}</title>
<meta name="keywords" content="构网型储能,并网" />
<meta name="description" content="{description}" />
<link href="/skin/default/css/style.css" rel="stylesheet" type="text/css" />
</head><body>
<table width="100%" border="0" cellspacing="0" cellpadding="0" class="top"><tr><td><a href="/">{site}</a> | 设为首页 | 加入收藏</td></tr></table>
<div class="nav"><ul>{nav}</ul></div>
<div class="position">当前位置：<a href="/">首页</a>&nbsp;>&nbsp;<a href="/news/">储能新闻</a>&nbsp;>&nbsp;正文</div>
<div class="left">
<div class="title_info"><h1>{title}</h1>
<div class="info_text">发布时间：{date_text}&nbsp;&nbsp;来源：{source}&nbsp;&nbsp;作者：本站编辑&nbsp;&nbsp;浏览次数：<script src="/e/public/ViewClick/?classid=2&id=1207&addclick=1"></script></div></div>
<div class="text" id="text">
{paragraphs}
</div>
<div class="editor">（责任编辑：{editor}）</div>
<div class="share">分享到：<a href="#" class="weixin">微信</a><a href="#" class="weibo">微博</a></div>
<div class="page_up">上一篇：<a href="/news/1206.html">储能电站安全管理办法征求意见</a></div>
<div class="page_down">下一篇：<a href="/news/1208.html">氢能产业链重点项目集中签约</a></div>
<div class="xg"><h3>相关文章</h3><ul>{hot}</ul></div>
</div>
<div class="right"><div class="hot"><h3>热门文章</h3><ul>{hot}</ul></div></div>
<div class="footer">{site} 版权所有 苏ICP备12034567号 技术支持：帝国CMS</div>
</body></html>
""",
        date_text="2025-03-06 09:12",
        paragraph="<p>{text}</p>",
    ),
    "cms-wordpress.html": dict(
        charset="utf-8",
        title="钠离子电池产业化进程加速,多家企业发布新品",
        site="电池百科",
        published="2025-02-20T10:00:00+08:00",
        source=None, editor=None,
        paragraphs=[
            "近日,多家电池企业相继发布钠离子电池新品,能量密度普遍达到每公斤160瓦时以上,循环寿命超过5000次。",
            "业内人士认为,钠资源储量丰富、分布广泛,钠离子电池在低温性能和安全性方面具备优势,有望在两轮车、低速车和储能领域率先实现规模应用。",
            "不过,钠离子电池产业链尚处于起步阶段,正极材料、电解液等环节的成本仍有下降空间,行业标准体系也有待完善。",
            "据机构预测,到2027年全球钠离子电池出货量有望突破50吉瓦时。",
        ],
        template="""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} &#8211; {site}</title>
<link rel='stylesheet' id='theme-style-css' href='/wp-content/themes/zhuti/style.css?ver=6.7' type='text/css' media='all' />
<meta property="og:type" content="article" />
<meta property="og:title" content="{title}" />
<meta property="article:published_time" content="2025-02-20T02:00:00+00:00" />
</head>
<body class="post-template-default single single-post">
<header id="masthead" class="site-header"><p class="site-title"><a href="/" rel="home">{site}</a></p>
<nav id="site-navigation" class="main-navigation"><ul id="primary-menu" class="menu">{nav}</ul></nav></header>
<div id="content" class="site-content"><div id="primary" class="content-area"><main id="main" class="site-main">
<article id="post-2381" class="post-2381 post type-post status-publish format-standard hentry category-news">
<header class="entry-header"><h1 class="entry-title">{title}</h1>
<div class="entry-meta"><span class="posted-on">发布于 <a href="/2025/02/20/na-ion/" rel="bookmark"><time class="entry-date published" datetime="2025-02-20T10:00:00+08:00">{date_text}</time></a></span><span class="byline"> 作者 <span class="author vcard"><a class="url fn n" href="/author/admin/">admin</a></span></span></div>
</header>
<div class="entry-content">
{paragraphs}
</div>
<footer class="entry-footer"><span class="cat-links">分类：<a href="/category/news/" rel="category tag">行业新闻</a></span><span class="tags-links">标签：<a href="/tag/na/" rel="tag">钠离子电池</a></span></footer>
</article>
<nav class="navigation post-navigation"><div class="nav-links"><div class="nav-previous"><a href="/2025/02/19/x/" rel="prev">上一篇 光伏组件价格连续三周企稳</a></div><div class="nav-next"><a href="/2025/02/21/y/" rel="next">下一篇 多地出台充电设施建设补贴政策</a></div></div></nav>
<div id="comments" class="comments-area"><div id="respond" class="comment-respond"><h3 id="reply-title" class="comment-reply-title">发表回复</h3><form action="/wp-comments-post.php" method="post" id="commentform"><p class="comment-notes">您的电子邮箱地址不会被公开。</p><p class="comment-form-comment"><label for="comment">评论</label><textarea id="comment" name="comment"></textarea></p></form></div></div>
</main></div>
<aside id="secondary" class="widget-area"><section class="widget widget_recent_entries"><h2 class="widget-title">近期文章</h2><ul>{hot}</ul></section></aside></div>
<footer id="colophon" class="site-footer"><div class="site-info">自豪地采用WordPress | 粤ICP备19087654号</div></footer>
</body></html>
""",
        date_text="2025年2月20日",
        paragraph="<p>{text}</p>",
    ),
    "cms-gov-trs.html": dict(
        charset="utf-8",
        title="关于印发《新型电力系统建设三年行动方案》的通知",
        site="某省发展和改革委员会",
        published="2025-01-10T00:00:00+08:00",
        source="省能源局", editor=None,
        paragraphs=[
            "各市发展改革委(能源局),省电力公司,各有关企业:",
            "为贯彻落实国家关于加快构建新型电力系统的决策部署,推动能源绿色低碳转型,我们研究制定了《新型电力系统建设三年行动方案》,现印发给你们,请认真抓好落实。",
            "各地要结合实际,细化工作措施,明确责任分工,确保各项任务按期完成。执行中遇到的问题,请及时报告省能源局。",
            "省发展和改革委员会",
            "2025年1月10日",
        ],
        template="""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
<meta name="SiteName" content="{site}" />
<meta name="ArticleTitle" content="{title}" />
<meta name="PubDate" content="2025-01-10 16:30" />
<meta name="ContentSource" content="{source}" />
<title>{title}_通知公告_{site}</title>
</head><body>
<div class="top"><div class="top_l">今天是：<span id="today"></span></div><div class="top_r"><a href="#">无障碍浏览</a> | <a href="#">长者模式</a></div></div>
<div class="banner"><img src="../../images/banner.jpg" alt="{site}" /></div>
<div class="menu"><ul>{nav}</ul></div>
<div class="dqwz">您当前的位置：<a href="../../">首页</a> &gt; <a href="../">通知公告</a></div>
<div class="xxgk_table"><table width="100%" border="0" cellspacing="0" cellpadding="0">
<tr><td class="t1">索 引 号：</td><td>11330000002482071N/2025-00021</td><td class="t1">发布机构：</td><td>{source}</td></tr>
<tr><td class="t1">生成日期：</td><td>2025-01-09</td><td class="t1">文　　号：</td><td>某发改能源〔2025〕3号</td></tr>
</table></div>
<div class="article">
<div class="title">{title}</div>
<div class="info">发布日期：{date_text}　　来源：{source}　　浏览次数：<span id="count">1024</span>　　字号：[<a href="#">大</a> <a href="#">中</a> <a href="#">小</a>]</div>
<div class="TRS_Editor"><div class="Custom_UnionStyle">
{paragraphs}
</div></div>
<div class="fj">附件：<a href="./P020250110.pdf">新型电力系统建设三年行动方案.pdf</a></div>
<div class="btns"><a href="javascript:window.print()">【打印本页】</a> <a href="javascript:window.close()">【关闭窗口】</a></div>
</div>
<div class="bottom"><p>主办单位：{site}　地址：某市某路1号　邮编：310000</p><p>网站标识码：3300000001　浙ICP备05012345号　浙公网安备 33010602001234号</p></div>
</body></html>
""",
        date_text="2025-01-10",
        paragraph='<p style="text-indent: 2em; line-height: 2em;">{text}</p>',
    ),
    "cms-portal.html": dict(
        charset="utf-8",
        title="特高压工程建设提速 今年将开工“五交五直”",
        site="财经新闻网",
        published="2025-05-07T10:35:00+08:00",
        source="经济日报", editor="张蕾",
        paragraphs=[
            "记者从国家电网公司获悉,今年将加快推进特高压工程建设,计划开工“五交五直”共10项特高压工程,全年电网投资有望超过6500亿元。",
            "特高压输电具有输送容量大、距离远、损耗低等优势,是实现西部清洁能源大规模外送的重要手段。目前,我国已建成投运特高压工程38项,跨省跨区输电能力超过3亿千瓦。",
            "专家表示,随着沙漠、戈壁、荒漠地区大型风电光伏基地加快建设,配套外送通道的需求将持续增长,特高压建设将进入新一轮高峰期。",
            "相关设备制造企业订单饱满,换流阀、特高压变压器等核心设备已实现国产化。",
        ],
        template="""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<title>{title}|特高压_{site}</title>
<meta name="keywords" content="特高压,电网投资" />
<meta name="description" content="{description}" />
<meta property="og:type" content="news" />
<meta property="og:title" content="{title}" />
<meta name="weibo: article:create_at" content="2025-05-07 10:35:21" />
<script>var ARTICLE_ID = "kxyz1234567";</script>
</head><body>
<div class="top-nav"><ul class="nav-list">{nav}</ul><div class="login"><a href="#">登录</a> | <a href="#">注册</a></div></div>
<div class="main-content w1000">
<h1 class="main-title">{title}</h1>
<div class="top-bar-wrap"><div class="top-bar"><div class="date-source"><span class="date">{date_text}</span><a href="/media/jjrb/" class="source" target="_blank">{source}</a></div>
<div class="share-box"><a href="#" class="weibo">分享到微博</a><a href="#" class="weixin">微信扫一扫</a></div><div class="comment-box"><a href="#comment">评论</a></div></div></div>
<div class="article-content clearfix"><div class="article-content-left">
<div class="article" id="artibody">
<!-- 正文内容 begin -->
{paragraphs}
<!-- 正文内容 end -->
<div class="img_wrapper"><img src="/pic/2025/0507/uhv.jpg" alt=""></div>
</div>
<p class="show_author">责任编辑：{editor} </p>
<div class="keywords" id="keywords">文章关键词：<a href="/tag/uhv/">特高压</a> <a href="/tag/grid/">电网投资</a></div>
<div class="blk-related"><h3>相关阅读</h3><ul>{hot}</ul></div>
<div class="comment-wrap" id="comment"><h3>我要评论</h3><textarea placeholder="文明上网理性发言"></textarea></div>
</div>
<div class="article-content-right"><div class="hot-news"><h3>24小时热文</h3><ol>{hot}</ol></div>
<div class="ad"><a href="#">广告</a></div></div></div>
</div>
<div class="footer"><p><a href="#">关于我们</a> | <a href="#">广告服务</a> | <a href="#">联系我们</a> | <a href="#">招聘信息</a></p><p>Copyright &copy; 1996-2025 {site} All Rights Reserved 京ICP证000007号</p></div>
</body></html>
""",
        date_text="2025年05月07日 10:35",
        paragraph="<p>　　{text}</p>",
    ),
    "cms-wechat.html": dict(
        charset="utf-8",
        title="一文读懂虚拟电厂:它是什么,能做什么",
        site="能源观察",
        published="2024-12-28T20:15:00+08:00",
        source=None, editor=None,
        paragraphs=[
            "虚拟电厂并不是一座真实存在的电厂,而是通过数字化技术,把分散在各处的分布式电源、储能、可调节负荷聚合起来,像一座电厂一样参与电力系统运行。",
            "在用电高峰时段,虚拟电厂可以调度空调、充电桩等可调节负荷减少用电,或者让储能设备放电,缓解电网供电压力;在用电低谷时段,则可以引导用户多用电,促进新能源消纳。",
            "目前,上海、深圳、江苏等地已开展虚拟电厂试点,单次最大调节能力达到数十万千瓦。",
            "业内预计,随着电力市场建设不断深入,虚拟电厂将迎来更大的发展空间。",
        ],
        template="""<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1.0,maximum-scale=1.0,user-scalable=0,viewport-fit=cover">
<meta property="og:title" content="{title}" />
<meta property="og:description" content="{description}" />
<meta property="og:site_name" content="微信公众平台" />
<title>{title}</title>
<script>var ct = "1735388100"; var nickname = "{site}";</script>
</head><body id="activity-detail" class="zh_CN wx_wap_page">
<div class="rich_media_wrp" id="js_article"><div class="rich_media_inner"><div id="page-content" class="rich_media_area_primary">
<div class="rich_media_area_primary_inner">
<h1 class="rich_media_title" id="activity-name">
{title}
</h1>
<div id="meta_content" class="rich_media_meta_list"><span class="rich_media_meta rich_media_meta_text">原创</span>
<span class="rich_media_meta rich_media_meta_nickname" id="profileBt"><a href="javascript:void(0);" id="js_name">{site}</a></span>
<em id="publish_time" class="rich_media_meta rich_media_meta_text">{date_text}</em></div>
<div class="rich_media_content js_underline_content" id="js_content" style="visibility: visible;">
<section style="margin: 0px 8px;"><section style="text-align: center;"><img data-src="https://mmbiz.qpic.cn/mmbiz_png/x/640" class="rich_pages wxw-img" /></section>
{paragraphs}
<section style="text-align: center;"><span style="font-size: 12px;color: rgb(136, 136, 136);">- END -</span></section>
</section></div>
<div class="rich_media_tool" id="js_toobar3"><div class="weui-flex"><span class="media_tool_meta">阅读 <span id="readNum3">2.1万</span></span><a class="media_tool_meta" href="#">在看</a></div></div>
</div></div></div></div>
<div class="qr_code_pc"><p>微信扫一扫<br>关注该公众号</p></div>
</body></html>
""",
        date_text="2024-12-28 20:15",
        paragraph='<section style="line-height: 1.75em;"><span style="font-size: 15px;letter-spacing: 1px;">{text}</span></section>',
    ),
    "cms-discuz.html": dict(
        charset="gbk",
        title="分享:我们厂光伏车棚一年发电量统计",
        site="新能源论坛",
        published="2025-03-15T21:08:00+08:00",
        source=None, editor=None,
        paragraphs=[
            "去年三月我们厂在停车场建了光伏车棚,装机容量320千瓦,用的是单晶双面组件,到现在正好满一年,把数据整理一下分享给大家。",
            "全年累计发电约38.6万千瓦时,平均每千瓦装机发电1206千瓦时,比设计值高了大约4%。自发自用比例在85%左右,余电上网。",
            "维护方面,一年清洗了四次组件,逆变器出过一次通讯故障,厂家上门半天就处理好了。",
            "算下来投资回收期大概在五年半,整体还是比较满意的,有问题欢迎交流。",
        ],
        template="""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<meta http-equiv="Content-Type" content="text/html; charset=gbk" />
<title>{title} - 用户分享 -  {site} -  Powered by Discuz!</title>
<meta name="keywords" content="{title}" />
<meta name="generator" content="Discuz! X3.4" />
</head><body id="nv_portal" class="pg_view">
<div id="toptb" class="cl"><div class="wp"><div class="z"><a href="#">设为首页</a><a href="#">收藏本站</a></div></div></div>
<div id="hd"><div class="wp"><div class="hdc cl"><h2><a href="./" title="{site}"><img src="static/image/common/logo.png" alt="{site}" border="0" /></a></h2></div>
<div id="nv"><ul>{nav}</ul></div></div></div>
<div id="pt" class="bm cl"><div class="z"><a href="./" class="nvhm" title="首页">{site}</a> <em>&rsaquo;</em> <a href="portal.php">门户</a> <em>&rsaquo;</em> <a href="portal.php?mod=list&catid=3">用户分享</a> <em>&rsaquo;</em> 查看内容</div></div>
<div id="ct" class="ct2 wp cl"><div class="mn"><div class="bm vw">
<div class="h hm"><h1 class="ph">{title} </h1>
<p class="xg1">{date_text}<span class="pipe">|</span> 发布者: <a href="home.php?mod=space&uid=12">光伏老王</a><span class="pipe">|</span> 查看: 3021<span class="pipe">|</span> 评论: 15</p></div>
<div class="s"><div><strong>摘要</strong>: 去年三月我们厂在停车场建了光伏车棚,装机容量320千瓦,用的是单晶双面组件,到现在正好满一年,把数据 ...</div></div>
<div class="d"><table cellpadding="0" cellspacing="0" class="vwtb"><tr><td id="article_content">
{paragraphs}
</td></tr></table>
<div class="ptw"><div class="xs3">您的评价:</div><a href="#">已阅</a><a href="#">支持</a></div></div>
<div class="o cl ptm pbm"><a href="#" class="oshr">分享</a><a href="#" class="oshr ofav">收藏</a><a href="#" class="oshr oivt">邀请</a></div>
<div class="pren pbm cl"><em>上一篇：<a href="article-101-1.html">储能电站安全管理办法征求意见</a></em><em>下一篇：<a href="article-103-1.html">氢能产业链重点项目集中签约</a></em></div>
</div>
<div class="bm"><div class="bm_h cl"><h3>相关阅读</h3></div><div class="bm_c"><ul class="xl xl2 cl">{hot}</ul></div></div>
<div id="comment" class="bm"><div class="bm_h cl"><h3>最新评论</h3></div><div id="comment_ul" class="xld xlda"><dl><dt>老李</dt><dd>数据很详细,感谢分享!</dd></dl></div></div>
</div>
<div class="sd pph"><div class="bm"><div class="bm_h"><h2>热门文章</h2></div><div class="bm_c"><ul class="xl xl1 cl">{hot}</ul></div></div></div></div>
<div id="ft" class="wp cl"><div id="flk" class="y"><p><a href="#">联系我们</a><span class="pipe">|</span><strong><a href="#">{site}</a></strong> ( <a href="#">沪ICP备11001234号-2</a> )</p></div>
<div id="frt"><p>Powered by <strong><a href="http://www.discuz.net">Discuz!</a></strong> <em>X3.4</em></p></div></div>
</body></html>
""",
        date_text="2025-3-15 21:08",
        paragraph="{text}<br />\n<br />",
    ),
    "cms-static-table.html": dict(
        charset="gbk",
        title="我市召开迎峰度夏电力保供工作会议",
        site="某市电力信息网",
        published="2024-06-12T14:30:00+08:00",
        source="市电力公司办公室", editor=None,
        paragraphs=[
            "6月11日下午,市政府召开迎峰度夏电力保供工作会议,分析研判今年夏季电力供需形势,部署电力保供重点工作。",
            "会议指出,今年我市最高用电负荷预计同比增长8%左右,局部地区、部分时段供电偏紧。各有关单位要提前做好设备检修和应急准备,确保电网安全稳定运行。",
            "会议要求,要加强需求侧管理,引导工业用户错峰生产,发挥储能和虚拟电厂作用,全力保障居民生活和重要用户用电。",
        ],
        template="""<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>{title}</title>
<style type="text/css">.black14 {{ font-size: 14px; line-height: 24px; }}</style>
</head>
<body topmargin="0" leftmargin="0">
<table width="778" border="0" align="center" cellpadding="0" cellspacing="0"><tr><td><img src="/images/top.jpg" width="778" height="120"></td></tr></table>
<table width="778" border="0" align="center" cellpadding="0" cellspacing="0" bgcolor="#0066CC"><tr>{nav}</tr></table>
<table width="778" border="0" align="center" cellpadding="0" cellspacing="0">
<tr><td width="200" valign="top"><table width="100%"><tr><td class="lm">最新动态</td></tr>{hot}</table></td>
<td width="578" valign="top">
<table width="96%" border="0" align="center" cellpadding="0" cellspacing="0">
<tr><td height="30">您现在的位置：<a href="/">首页</a> &gt;&gt; <a href="/news/">电力要闻</a></td></tr>
<tr><td height="50" align="center"><font size="4"><b>{title}</b></font></td></tr>
<tr><td height="25" align="center" bgcolor="#F2F2F2">发布时间：{date_text}&nbsp;&nbsp;&nbsp;&nbsp;信息来源：{source}&nbsp;&nbsp;&nbsp;&nbsp;点击数：<font color="red">356</font></td></tr>
<tr><td class="black14">
<br>
{paragraphs}
</td></tr>
<tr><td height="30" align="right">【<a href="javascript:window.print()">打印</a>】【<a href="javascript:window.close()">关闭</a>】</td></tr>
</table>
</td></tr></table>
<table width="778" border="0" align="center" cellpadding="0" cellspacing="0"><tr><td align="center" height="60">版权所有：{site} 备案号：冀ICP备06001234号<br>建议使用1024×768分辨率浏览</td></tr></table>
</body>
</html>
""",
        date_text="2024-06-12 14:30:00",
        paragraph="&nbsp;&nbsp;&nbsp;&nbsp;{text}<br><br>",
    ),
}


def render(spec: dict) -> bytes:
    def nav_cells():
        return "".join(f'<td><a href="/{i}/">{n}</a></td>' for i, n in enumerate(NAV))

    def hot_rows():
        return "".join(f'<tr><td><a href="/news/{9000 + i}.html">{t}</a></td></tr>' for i, t in enumerate(HOT))

    table = "static-table" in spec.get("name", "")
    page = spec["template"].format(
        title=escape(spec["title"], quote=False), site=spec["site"],
        description=escape(spec["paragraphs"][0][:80]), date_text=spec["date_text"],
        source=spec["source"] or "", editor=spec["editor"] or "",
        nav=nav_cells() if table else nav(), hot=hot_rows() if table else hot(),
        paragraphs="\n".join(spec["paragraph"].format(text=escape(p, quote=False)) for p in spec["paragraphs"]),
    )
    return page.encode("gb18030" if spec["charset"] == "gbk" else "utf-8")


def main() -> None:
    path = HERE / "expected.json"
    expected = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for name, spec in ARTICLES.items():
        spec["name"] = name
        (HERE / name).write_bytes(render(spec))
        expected[name] = {"layout": "other", "url": None, "fields": {
            "title": spec["title"], "published_at": spec["published"], "body": "\n".join(spec["paragraphs"]),
            "source": spec["source"], "editor": spec["editor"]}}
    path.write_text(json.dumps(dict(sorted(expected.items())), ensure_ascii=False, indent=1) + "\n",
                    encoding="utf-8")


if __name__ == "__main__":
    main()
