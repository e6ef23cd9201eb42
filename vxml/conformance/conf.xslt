<?xml version="1.0"?>
<!-- outcall's conversion of the W3C VoiceXML IR test markup (conf:*) into VoiceXML, for the
     DTMF and no-input tests run by run.sh. Written for outcall from the behaviour the IR
     documents describe: pass and fail are spoken and end the session, comments are logged,
     input indicators become prompts. Tests that need speech are skipped by run.sh. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:conf="http://www.w3.org/2002/vxml-conformance"
    xmlns="http://www.w3.org/2001/vxml"
    exclude-result-prefixes="conf">

  <xsl:output method="xml" indent="no"/>

  <xsl:template match="@* | node()">
    <xsl:copy><xsl:apply-templates select="@* | node()"/></xsl:copy>
  </xsl:template>

  <!-- drop the conformance namespace declaration from copied elements -->
  <xsl:template match="*[namespace-uri() = 'http://www.w3.org/2001/vxml' or namespace-uri() = '']">
    <xsl:element name="{local-name()}" namespace="{namespace-uri()}">
      <xsl:apply-templates select="@* | node()"/>
    </xsl:element>
  </xsl:template>

  <xsl:template match="comment()"/>

  <xsl:template match="conf:pass">
    <prompt>pass</prompt>
    <exit/>
  </xsl:template>

  <xsl:template match="conf:fail">
    <prompt>fail</prompt>
    <xsl:if test="@reason">
      <log>failure reason: <xsl:value-of select="@reason"/></log>
    </xsl:if>
    <xsl:if test="@expr">
      <log>failure expression: <value expr="{@expr}"/></log>
    </xsl:if>
    <exit/>
  </xsl:template>

  <xsl:template match="conf:comment">
    <log><xsl:apply-templates/></log>
  </xsl:template>

  <xsl:template match="conf:dtmf">
    <prompt>Press <xsl:value-of select="@value"/>.</prompt>
  </xsl:template>

  <xsl:template match="conf:noinput">
    <prompt>Say nothing.</prompt>
  </xsl:template>

  <xsl:template match="conf:nomatch">
    <prompt>Press something unrecognizable.</prompt>
  </xsl:template>

  <xsl:template match="conf:hangup">
    <prompt>Hang up now.</prompt>
  </xsl:template>

  <!-- speech-only indicators: kept as prompts so the document stays valid -->
  <xsl:template match="conf:speech | conf:recording">
    <prompt>speech input</prompt>
  </xsl:template>
  <xsl:template match="conf:grammar"/>
</xsl:stylesheet>
